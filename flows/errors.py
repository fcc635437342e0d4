"""The error family that means bad input: a config, data, path or checkpoint the user can fix.

Every stage reports such an error as one ``error: ...`` line and exit code 2 (`flows.stages.common.run_stage`).
Each layer raises its own subclass (`ParamsError`, `DataError`, `ModelError`, `PromptError`), all of them this.
"""

from __future__ import annotations


class InputError(ValueError):
    """Bad input the user can fix; the message names the file, key, column or value at fault."""
