"""Test-wide settings: offline, quiet, and every store under a temporary directory."""

import os
import tempfile

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
}
# Tests must not depend on the developer's shell: these win over whatever is set.
os.environ.update(_ENV)
