"""Team mode, switched by configuration only: an MLflow tracking server on PostgreSQL with its own
artifact store, a Prefect server on PostgreSQL, a shared-directory DVC remote, and the service's
prediction log on PostgreSQL. Alice runs the pipeline against all of it; the run, the registry alias
and the artifacts are on the server, the flow run on the Prefect server, the data in the shared
remote; Bob's clone pulls the data from there; the service serves the champion from the server."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import httpx
import pytest
import sqlalchemy as sa
from conftest import dvc, git, sh

from mlpipe.runtime.localserver import free_port, launch, start_prefect_server, start_service, wait_answering
from mlpipe.runtime.shell import stop_process_group, tool_env

pytestmark = pytest.mark.integration
MODEL = "flights-late"


def start_mlflow_server(backend: str, artifacts: Path, log: Path) -> tuple[str, subprocess.Popen]:
    """`mlflow server` on 127.0.0.1 and a free port: PostgreSQL backend store, proxied artifact store.
    One worker and no job runner (7 more processes for GenAI jobs): the 2 cores are shared with the suite."""
    port = free_port()
    proc = launch(
        [
            str(Path(sys.executable).parent / "mlflow"),
            "server",
            "--backend-store-uri",
            backend,
            "--artifacts-destination",
            artifacts.as_uri(),
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--workers",
            "1",
        ],
        log.parent,
        tool_env({"MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false"}),
        log,
    )
    url = f"http://127.0.0.1:{port}"
    wait_answering(proc, f"{url}/health", timeout_s=180)
    return url, proc


def clone(src: Path, dest: Path, shared: Path) -> Path:
    sh(["git", "clone", "-q", str(src), str(dest)], src.parent)
    git(dest, "config", "user.email", "team@mlpipe.test")
    git(dest, "config", "user.name", "team")
    dvc(
        dest, "remote", "add", "--local", "--default", "team", str(shared)
    )  # .dvc/config.local: not committed
    return dest


def test_team_mode_on_postgres_servers_and_a_shared_remote(
    template_repo, tmp_path, pg_databases, monkeypatch
):
    shared = tmp_path / "shared-dvc-remote"
    mlflow_url, mlflow_proc = start_mlflow_server(
        pg_databases(), tmp_path / "mlartifacts", tmp_path / "mlflow.log"
    )
    monkeypatch.setenv("PREFECT_API_DATABASE_CONNECTION_URL", pg_databases("asyncpg"))
    port = free_port()
    prefect_proc = start_prefect_server(port, tmp_path / "prefect-home")
    monkeypatch.delenv("PREFECT_API_DATABASE_CONNECTION_URL")
    log_url = pg_databases()
    env = tool_env(
        {
            "MLFLOW_TRACKING_URI": mlflow_url,
            "PREFECT_API_URL": f"http://127.0.0.1:{port}/api",
            "MLPIPE_PREDICTION_LOG_URL": log_url,
        }
    )
    try:
        alice = clone(template_repo, tmp_path / "alice", shared)
        run = subprocess.run(
            [sys.executable, "-m", "mlpipe.cli", "run"],
            cwd=alice,
            env=env,
            capture_output=True,
            text=True,
            timeout=600,
        )
        assert run.returncode == 0, run.stderr[-3000:]
        assert f"tracking:      {mlflow_url}" in run.stdout

        import mlflow

        client = mlflow.MlflowClient(tracking_uri=mlflow_url)
        champion = client.get_model_version_by_alias(MODEL, "champion")
        record = client.get_run(champion.run_id)
        assert record.info.artifact_uri.startswith("mlflow-artifacts:"), "artifacts go through the server"
        names = {a.path for a in client.list_artifacts(record.info.run_id, "mlpipe")}
        assert "mlpipe/validate" in names and any((tmp_path / "mlartifacts").rglob("model.skops"))
        assert "mlpipe/model" not in names, "one copy of the model: the logged model's"
        assert not (alice / "mlruns").exists(), "nothing tracked locally"

        flow_runs = httpx.post(f"http://127.0.0.1:{port}/api/flow_runs/filter", json={"limit": 10}).json()
        assert any(fr["state_type"] == "COMPLETED" for fr in flow_runs), (
            "the flow run is on the Prefect server"
        )

        md5 = record.data.tags["mlpipe.data_md5"]
        assert (shared / "files" / "md5" / md5[:2] / md5[2:]).exists(), "the snapshot is in the shared remote"
        bob = clone(alice, tmp_path / "bob", shared)
        dvc(bob, "pull", "data.dvc")
        assert dvc(bob, "status", "data.dvc").stdout.strip().startswith("Data and pipelines are up to date")

        base, service = start_service(alice, env=env, timeout_s=180)
        try:
            example = httpx.get(f"{base}/model").json()
            assert example["version"] == champion.version and example["run_id"] == champion.run_id
            assert httpx.post(f"{base}/predict", json=example["input_example"]).status_code == 200
        finally:
            stop_process_group(service)
        engine = sa.create_engine(log_url)
        with engine.connect() as conn:
            assert conn.execute(sa.text("select count(*) from predictions")).scalar_one() == 1
        engine.dispose()
    finally:
        stop_process_group(prefect_proc)
        stop_process_group(mlflow_proc)
