"""Integration fixtures: the project in a temporary git repo, on a two-week slice of the real data.

Nothing here mocks git, DVC or MLflow: the tests run `python -m mlpipe.cli` and `dvc` as a user would.
"""

from __future__ import annotations

import math
import os
import shutil
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest
import sqlalchemy as sa
import yaml

from mlpipe.errors import ToolError
from mlpipe.runtime.localserver import free_port, start_prefect_server, start_service
from mlpipe.runtime.shell import stop_process_group, tool_env

REPO = Path(__file__).resolve().parents[2]
PROJECT_FILES = [
    "dvc.yaml",
    "params.yaml",
    ".dvcignore",
    ".gitignore",
    ".dvc/config",
    ".dvc/.gitignore",
    "uv.lock",
    "src",
]
# Two weeks of January (about 12k flights) and a short fit: the real pipeline in seconds.
SLICE = {"start": "2013-01-01", "end": "2013-01-15"}


def sh(args: list[str], cwd: Path, check: bool = True) -> subprocess.CompletedProcess:
    """Run a command as a user would in the project, with the project's environment."""
    env = tool_env()
    env.pop("MLFLOW_TRACKING_URI", None)
    proc = subprocess.run(args, cwd=cwd, env=env, capture_output=True, text=True, timeout=600)
    if check and proc.returncode != 0:
        raise AssertionError(
            f"{args} exited {proc.returncode}\nstdout:\n{proc.stdout}\nstderr:\n{proc.stderr}"
        )
    return proc


def mlpipe(root: Path, *args: str, check: bool = True) -> subprocess.CompletedProcess:
    return sh([sys.executable, "-m", "mlpipe.cli", *args], root, check=check)


def dvc(root: Path, *args: str, check: bool = True) -> subprocess.CompletedProcess:
    return sh([str(Path(sys.executable).parent / "dvc"), *args], root, check=check)


def git(root: Path, *args: str) -> str:
    return sh(["git", *args], root).stdout.strip()


def commit_all(root: Path, message: str) -> str:
    git(root, "add", "-A")
    if git(root, "status", "--porcelain"):
        git(root, "commit", "-q", "-m", message)
    return git(root, "rev-parse", "HEAD")


def edit_params(root: Path, **sections) -> None:
    """Update params.yaml sections in place (one level deep merge)."""
    path = root / "params.yaml"
    doc = yaml.safe_load(path.read_text())
    for key, value in sections.items():
        if isinstance(value, dict) and isinstance(doc.get(key), dict):
            doc[key] = {**doc[key], **value}
        else:
            doc[key] = value
    path.write_text(yaml.safe_dump(doc, sort_keys=False))


def copy_project(src: Path, dest: Path) -> Path:
    shutil.copytree(src, dest, symlinks=True)
    return dest


# Services of Prefect's server no test of the session server uses (schedules and cancellations are tested on
# servers of their own): off, an idle server burns 1.57 s of CPU a minute instead of 2.4, for each worker.
UNUSED_PREFECT_SERVICES = {
    f"PREFECT_SERVER_SERVICES_{name}_ENABLED": "false"
    for name in (
        "CANCELLATION_CLEANUP",
        "FOREMAN",
        "LATE_RUNS",
        "PAUSE_EXPIRATIONS",
        "REPOSSESSOR",
        "CLEANUP_RECONCILER",
        "TRIGGERS",
    )
}


@pytest.fixture(scope="session", autouse=True)
def prefect_server(tmp_path_factory):
    """One real Prefect server on 127.0.0.1 for the session: each `mlpipe run` then skips starting a
    temporary server of its own (~6 s). Stopped at the end; tests that need their own pop the URL."""
    home = tmp_path_factory.mktemp("prefect-home")
    port = free_port()
    try:
        proc = start_prefect_server(port, home, env=UNUSED_PREFECT_SERVICES)
    except ToolError as exc:
        pytest.fail(f"{exc}\n{(home / 'server.log').read_text()[-2000:]}")
    url = f"http://127.0.0.1:{port}/api"
    old = os.environ.get("PREFECT_API_URL")
    os.environ["PREFECT_API_URL"] = url
    yield url
    if old is None:
        os.environ.pop("PREFECT_API_URL", None)
    else:
        os.environ["PREFECT_API_URL"] = old
    stop_process_group(proc, grace_s=30)


@pytest.fixture(scope="session")
def template_repo(tmp_path_factory) -> Path:
    """The project's files in a fresh git repo, configured for the small slice, committed."""
    root = tmp_path_factory.mktemp("template")
    for name in PROJECT_FILES:
        src = REPO / name
        if src.is_dir():
            shutil.copytree(src, root / name, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            (root / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, root / name)
    doc = yaml.safe_load((root / "params.yaml").read_text())
    doc["dataset"]["initial_period"] = SLICE
    doc["train"]["hyperparams"]["max_iter"] = 40
    doc["dataset"]["batch_freq"] = "week"  # replayed batches of about 6k rows
    # The gate's logic is under test here, not this shared 2-core machine's latency: wide time budgets
    # (the budget refusals are tested with budgets no model can meet).
    doc["deploy"].update(max_p99_latency_ms=2000, max_load_s=60, min_throughput_rows_s=100)
    (root / "params.yaml").write_text(yaml.safe_dump(doc, sort_keys=False))
    sh(["git", "init", "-q", "-b", "main"], root)
    git(root, "config", "user.email", "ci@mlpipe.test")
    git(root, "config", "user.name", "mlpipe tests")
    commit_all(root, "project on a two-week slice")
    return root


@pytest.fixture(scope="session")
def first_run(template_repo, tmp_path_factory) -> tuple[Path, subprocess.CompletedProcess]:
    """A clone of the template after `mlpipe run` (which commits data.dvc, then dvc.lock and metrics.json)."""
    root = tmp_path_factory.mktemp("first") / "project"
    sh(["git", "clone", "-q", str(template_repo), str(root)], template_repo.parent)
    for key in ("user.email", "user.name"):
        git(root, "config", key, git(template_repo, "config", key))
    proc = mlpipe(root, "run")
    return root, proc


@pytest.fixture
def project_copy(first_run, tmp_path) -> Path:
    """A private copy of the first run's project (repo, DVC cache and remote, MLflow store)."""
    return copy_project(first_run[0], tmp_path / "project")


def run_id_of(proc: subprocess.CompletedProcess) -> str:
    return next(
        line.split(":", 1)[1].strip()
        for line in proc.stdout.splitlines()
        if line.strip().startswith("mlflow run:")
    )


def tracking_client(root: Path):
    import mlflow

    return mlflow.MlflowClient(tracking_uri=f"sqlite:///{root / 'mlruns' / 'mlflow.db'}")


def registered_model_file(client, name: str, version: str) -> Path:
    """The model file of a registered version: its logged model's, the one copy every consumer loads
    (and `mlflow models serve -m models:/NAME/VERSION` serves)."""
    source = client.get_model_version(name, version).source
    location = client.get_logged_model(source.removeprefix("models:/")).artifact_location
    return Path(location.removeprefix("file://")) / "model.skops"


def wait_until(check, timeout_s: float = 90, every_s: float = 0.5):
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        result = check()
        if result:
            return result
        time.sleep(every_s)
    raise AssertionError(f"not true within {timeout_s}s")


def start_server(root: Path, *args: str, wait_ready: bool = True):
    """`mlpipe serve` in its own process group on a free loopback port; returns (base url, process)."""
    env = tool_env()
    env.pop("MLFLOW_TRACKING_URI", None)
    try:
        return start_service(root, *args, wait_ready=wait_ready, env=env, timeout_s=180)
    except ToolError as exc:
        raise AssertionError(str(exc)) from exc


def stop(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=30)


# Team mode: PostgreSQL on 127.0.0.1:5432 (trust auth) on the development and CI machines.
PG_SERVER = os.environ.get("MLPIPE_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres")


@pytest.fixture
def pg_databases():
    """A factory of PostgreSQL databases of the test's own: `make(driver)` gives a URL; all are dropped
    afterwards."""
    names: list[str] = []
    admin = sa.create_engine(PG_SERVER, isolation_level="AUTOCOMMIT")

    def make(driver: str = "psycopg") -> str:
        name = f"mlpipe_test_{uuid.uuid4().hex[:10]}"
        with admin.connect() as conn:
            conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
        names.append(name)
        return PG_SERVER.replace("+psycopg", f"+{driver}").rsplit("/", 1)[0] + f"/{name}"

    yield make
    with admin.connect() as conn:
        for name in names:
            conn.execute(sa.text(f'DROP DATABASE "{name}" WITH (FORCE)'))
    admin.dispose()


@pytest.fixture
def pg_url(pg_databases) -> str:
    """One PostgreSQL database of the test's own (SQLAlchemy URL, psycopg)."""
    return pg_databases()


def records(frame, columns: list[str]) -> list[dict]:
    """Rows as /predict records: NaN -> null, numpy scalars -> Python."""
    return [
        {
            k: None if isinstance(v, float) and math.isnan(v) else (v.item() if hasattr(v, "item") else v)
            for k, v in row.items()
        }
        for row in frame[columns].to_dict(orient="records")
    ]


def post_until_refused(client, body: dict, at_most: int) -> tuple[object, list[str]]:
    """POST `body` to /predict until an answer is not 200 (at most `at_most` times): (the last response, the
    request ids of the answered ones)."""
    answered: list[str] = []
    for _ in range(at_most):
        r = client.post("/predict", json=body)
        if r.status_code != 200:
            break
        answered.append(r.json()["request_id"])
    return r, answered
