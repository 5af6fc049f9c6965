"""The one place an MLflow client is built, and where the project's tracking store is."""

from __future__ import annotations

import os
from pathlib import Path

from mlpipe.config import ProjectPaths


def tracking_uri(paths: ProjectPaths) -> str:
    """MLFLOW_TRACKING_URI when set (team mode), else SQLite under the project's mlruns/ (created)."""
    uri = os.environ.get("MLFLOW_TRACKING_URI")
    if uri:
        return uri
    paths.mlruns.mkdir(parents=True, exist_ok=True)
    return paths.tracking_uri


def mlflow_client(uri: str):
    """An MlflowClient on `uri` (MLflow imported here, on first use: it costs about a second)."""
    import mlflow

    return mlflow.MlflowClient(tracking_uri=uri)


def sqlite_store_missing(uri: str) -> bool:
    """True for a SQLite store whose file does not exist (not made yet, or deleted since)."""
    return uri.startswith("sqlite:///") and not Path(uri.removeprefix("sqlite:///")).exists()


def local_store(uri: str) -> bool:
    """True for a tracking store in a local file (the embedded default), False for a tracking server."""
    return not uri.startswith(("http://", "https://", "databricks"))


def open_store(uri: str) -> None:
    """Import MLflow and open the tracking and registry stores of `uri`, creating a new local store's tables
    (MLflow's migrations: seconds). `mlpipe run` calls it while its Prefect server boots, a wait it would
    otherwise spend idle; a store that does not open here is reported by the flow's first MLflow task."""
    client = mlflow_client(uri)
    if local_store(uri):
        client.search_experiments(max_results=1)
        client.search_registered_models(max_results=1)
