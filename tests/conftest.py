"""Test-wide settings: offline, quiet, and every store under a temporary directory."""

import os
import tempfile

import pytest

_TMP = tempfile.mkdtemp(prefix="adamix-tests-")
_ENV = {
    "PREFECT_HOME": os.path.join(_TMP, "prefect"),
    "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
    "PREFECT_LOGGING_LEVEL": "WARNING",
    "PREFECT_LOGGING_TO_API_ENABLED": "false",
    "PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS": "60",
    "MLFLOW_TRACKING_URI": f"sqlite:///{_TMP}/mlflow.db",
    "MLFLOW_DISABLE_TELEMETRY": "true",
    "DO_NOT_TRACK": "true",
    "DVC_NO_ANALYTICS": "1",
    "HF_HUB_OFFLINE": "1",
    "HF_DATASETS_OFFLINE": "1",
    "HF_HOME": os.path.join(_TMP, "hf"),
    "HF_HUB_DISABLE_TELEMETRY": "1",
    "TRANSFORMERS_VERBOSITY": "error",
    "TOKENIZERS_PARALLELISM": "false",
    "DASK_LOGGING__DISTRIBUTED": "warning",
    "RAY_USAGE_STATS_ENABLED": "0",
    # A stage called without an explicit root writes here, never into the repository (flows.paths).
    "ADAMIX_ROOT": os.path.join(_TMP, "project"),
}
# Tests must not depend on the developer's shell: these win over whatever is set.
os.environ.update(_ENV)
for _name in ("ADAMIX_PIPELINE_RUN", "PROFILE"):
    os.environ.pop(_name, None)


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory: pytest.TempPathFactory):
    """A tiny random BERT sequence classifier (2 labels) and its tokenizer, saved as a local model folder."""
    from tiny_models import save_tiny_pretrained
    from tiny_project import WORDS

    return save_tiny_pretrained(tmp_path_factory.mktemp("tiny-bert"), WORDS)


@pytest.fixture(scope="session")
def prefect_harness():
    """One temporary Prefect server for the whole session (about 10 s to start); flows run against it."""
    from prefect.testing.utilities import prefect_test_harness

    # 30 s by default; a loaded 2-core machine can need more than that to start the server.
    with prefect_test_harness(server_startup_timeout=180):
        yield
