"""The error of a model that cannot be found, loaded or used for the task."""

from __future__ import annotations

from ..errors import InputError


class ModelError(InputError):
    """The configured model cannot be found or loaded."""
