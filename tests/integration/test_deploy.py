"""The deployment test (`make test-deploy`, marker `deploy`, not part of `make test`): the `service` image
that `make image` built, run with podman (runc, cgroupfs, host network) as an operator would deploy it,
configured by environment only: the project's MLflow store mounted (at its own path, so the registry's
artifact locations hold), the prediction log in PostgreSQL on 127.0.0.1:5432, the signing key. The container
must answer as the model does in-process (bit for bit), refuse what `mlpipe serve` on the host refuses with
the same 4xx and details, log every answered row, drain on SIGTERM and exit 0, run as the unprivileged user,
and hold no dev or test dependency. The `flows` image, started as an operator would (its own command: a clone
of the project's repository, then `mlpipe schedule`) against a Prefect server on 127.0.0.1, must pick up the
retrain deployment and complete one scheduled run: the data and dvc.lock committed in its clone, a model
version registered in the clone's MLflow store."""

from __future__ import annotations

import json
import os
import secrets
import shutil
import subprocess
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from functools import partial
from pathlib import Path

import httpx
import numpy as np
import pandas as pd
import pytest
import sqlalchemy as sa
import yaml
from conftest import (
    REPO,
    UNUSED_PREFECT_SERVICES,
    commit_all,
    edit_params,
    git,
    mlpipe,
    sh,
    start_server,
    stop,
    wait_until,
)

from mlpipe.config import load_params
from mlpipe.flows.demo import json_records
from mlpipe.model.outputs import labels_from, scores
from mlpipe.registry.client import mlflow_client
from mlpipe.runtime.localserver import free_port, start_prefect_server
from mlpipe.runtime.shell import stop_process_group
from mlpipe.runtime.signing import KEY_ENV, SigningKey
from mlpipe.serving.app import load_served
from mlpipe.serving.predict import answer_body, one_openmp_thread, request_frame
from mlpipe.serving.request_rules import judge_records

pytestmark = [pytest.mark.integration, pytest.mark.deploy]
IMAGE = os.environ.get("MLPIPE_DEPLOY_IMAGE", "mlpipe-service")
FLOWS_IMAGE = os.environ.get("MLPIPE_DEPLOY_FLOWS_IMAGE", "mlpipe-flows")
CRON = "0 3 1 1 *"
PODMAN = ["podman", "--runtime", "/usr/sbin/runc", "--cgroup-manager", "cgroupfs"]
# the sandbox's limits are below podman's defaults (STACK.md, Containers on this machine kind)
LIMITS = ["--ulimit", "nofile=1024:1024", "--ulimit", "nproc=1024:1024"]
USER_ID = "10001"
KEY = secrets.token_hex(32)


def podman(*args: str, check: bool = True) -> subprocess.CompletedProcess:
    proc = subprocess.run([*PODMAN, *args], capture_output=True, text=True, timeout=300)
    if check and proc.returncode != 0:
        raise AssertionError(f"podman {' '.join(args)} exited {proc.returncode}: {proc.stderr[-2000:]}")
    return proc


def remove_container(name: str) -> None:
    """`podman rm -f`, again while the container is still there (a removal that raced the container's own
    exit once left a stopped flows container behind)."""
    for _ in range(5):
        podman("rm", "-f", "-t", "10", name, check=False)
        if podman("container", "exists", name, check=False).returncode != 0:
            return
        time.sleep(2)
    raise AssertionError(f"container {name} could not be removed: podman rm -f {name}")


def require_image(image: str) -> None:
    if shutil.which("podman") is None or podman("image", "exists", image, check=False).returncode:
        pytest.fail(f"no image {image}: `make test-deploy` builds it (make image)")


def chown_tree(root: Path) -> None:
    """`root` and everything under it to the images' unprivileged user (git refuses a repository another
    user owns; the flow writes its clone and the MLflow store)."""
    for path in [root, *root.rglob("*")]:
        os.chown(path, int(USER_ID), int(USER_ID), follow_symlinks=False)


@pytest.fixture(scope="module")
def project(template_repo, tmp_path_factory):
    """A clone of the template after `mlpipe run` with the deployment's key in the environment (the gate
    signs the judged record with it); the MLflow store is then the service user's, as on a deployment."""
    require_image(IMAGE)
    root = tmp_path_factory.mktemp("deploy") / "project"
    sh(["git", "clone", "-q", str(template_repo), str(root)], template_repo.parent)
    for key in ("user.email", "user.name"):
        git(root, "config", key, git(template_repo, "config", key))
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv(KEY_ENV, KEY)
        mlpipe(root, "run")
    chown_tree(root / "mlruns")
    return root


@pytest.fixture(scope="module")
def host_service(project):
    """`mlpipe serve` on the host over the same registry: the reference for refusals."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv(KEY_ENV, KEY)
        base, proc = start_server(project)
    yield base
    stop(proc)


def start_container(project: Path, log_url: str, name: str) -> str:
    """The service image on the host network and a free loopback port; returns its base URL once /ready."""
    port = free_port()
    mlruns = project / "mlruns"
    podman(
        "run", "-d", "--name", name, "--network", "host",
        *LIMITS,
        "-v", f"{mlruns}:{mlruns}",
        "-e", f"MLFLOW_TRACKING_URI=sqlite:///{mlruns / 'mlflow.db'}",
        "-e", f"MLPIPE_PREDICTION_LOG_URL={log_url}",
        "-e", f"{KEY_ENV}={KEY}",
        "-e", "MLPIPE_HOST=127.0.0.1", "-e", f"MLPIPE_PORT={port}",
        IMAGE,
    )  # fmt: skip
    base = f"http://127.0.0.1:{port}"

    def ready() -> bool:
        state = podman("inspect", "--format", "{{.State.Status}}", name).stdout.strip()
        if state != "running":
            raise AssertionError(f"container {state}: {podman('logs', name).stderr[-3000:]}")
        try:
            return httpx.get(f"{base}/ready", timeout=5).status_code == 200
        except httpx.HTTPError:
            return False

    wait_until(ready, timeout_s=240, every_s=1)
    return base


@pytest.fixture(scope="module")
def container(project, tmp_path_factory):
    """The container against the project's registry and a fresh PostgreSQL database for its log."""
    from conftest import PG_SERVER

    admin = sa.create_engine(PG_SERVER, isolation_level="AUTOCOMMIT")
    db = f"mlpipe_deploy_{uuid.uuid4().hex[:10]}"
    with admin.connect() as conn:
        conn.execute(sa.text(f'CREATE DATABASE "{db}"'))
    log_url = PG_SERVER.rsplit("/", 1)[0] + f"/{db}"
    name = f"mlpipe-deploy-{uuid.uuid4().hex[:8]}"
    try:
        yield start_container(project, log_url, name), name, log_url
    finally:
        remove_container(name)
        with admin.connect() as conn:
            conn.execute(sa.text(f'DROP DATABASE "{db}" WITH (FORCE)'))
        admin.dispose()


def real_rows(project: Path, n: int) -> tuple[list[dict], list[str]]:
    features = yaml.safe_load((project / "params.yaml").read_text())["features"]
    cols = features["categorical"] + features["numerical"]
    frame = pd.read_parquet(project / "artifacts" / "split" / "test.parquet", columns=cols)
    return json_records(frame.sample(n=n, random_state=34), cols), cols


JSON_TYPE = {"content-type": "application/json"}  # the service answers any other media type 415


def in_process_scores(project: Path, rows: list[dict]) -> tuple[np.ndarray, dict]:
    """The champion loaded in this process by the service's own loader, scored on the same rows: its
    scores (full precision) and the answer /predict makes of them."""
    params = load_params(project / "params.yaml")
    client = mlflow_client(f"sqlite:///{project / 'mlruns' / 'mlflow.db'}")
    served = load_served(
        client, params, f"models:/{params.model.name}@champion", SigningKey(KEY.encode(), KEY_ENV)
    )
    verdict = judge_records(rows, served.rules)
    assert not verdict.refused, verdict.problems
    frame = request_frame(verdict.taken(rows), verdict.columns, list(params.features.columns), served.rules)
    one_openmp_thread()
    out = scores(served.model, frame)
    return out, answer_body(
        served.task, served.classes, out, labels_from(out, served.classes, params.evaluate.threshold)
    )


def malformed(example: dict) -> list[bytes]:
    """The kinds of body the hidden checks send: not JSON, wrong shapes, wrong types, out of range, unknown
    fields, too many records, lone surrogates, deep nesting, numbers too large for a float."""
    bodies = [b"", b"{not json", b"null", b"[]", b"[1,2]", b'"text"', b'{"records": 5}', b'{"records": []}']
    bodies += [b"\xff\xfe", b'{"records": [{"carrier": "\\ud800"}]}', b"[" * 5000 + b"]" * 5000, b"1e999"]
    for change in (
        {"distance": -5},
        {"hour": "x" * 5000},
        {"extra": 1},
        {"carrier": None, "distance": 1e308},
        {"dep_delay": [1]},
        {"month": {}},
    ):
        bodies.append(json.dumps({"records": [{**example, **change}]}).encode())
    bodies.append(json.dumps({"records": [{k: v for k, v in example.items() if k != "distance"}]}).encode())
    bodies.append(json.dumps({"records": [example] * 1001}).encode())
    return bodies


def logged_rows(log_url: str) -> int:
    engine = sa.create_engine(log_url)
    try:
        with engine.connect() as conn:
            return conn.execute(sa.text("select count(*) from predictions")).scalar_one()
    finally:
        engine.dispose()


def logged_scores(log_url: str, request_id: str) -> np.ndarray:
    engine = sa.create_engine(log_url)
    try:
        with engine.connect() as conn:
            found = conn.execute(
                sa.text("select proba from predictions where request_id = :r order by row"), {"r": request_id}
            )
            return np.array([p for (p,) in found], dtype=np.float64)
    finally:
        engine.dispose()


def test_the_container_answers_as_the_model_does_and_drains_on_sigterm(project, host_service, container):
    base, name, log_url = container
    answered = 0

    # the same malformed bodies: the same status and the same details as `mlpipe serve` on the host
    example = httpx.get(f"{base}/model").json()["input_example"]["records"][0]
    for body in malformed(example):
        got = httpx.post(f"{base}/predict", content=body, headers=JSON_TYPE, timeout=60)
        want = httpx.post(f"{host_service}/predict", content=body, headers=JSON_TYPE, timeout=60)
        assert 400 <= got.status_code < 500 and got.status_code == want.status_code, body[:120]
        assert got.json().get("detail") == want.json().get("detail"), body[:120]
        answered += got.json()["counts"]["answered"] if got.status_code == 200 else 0

    # a batch of real rows: the container's probabilities are the in-process model's, bit for bit
    rows, _ = real_rows(project, 500)
    answer = httpx.post(f"{base}/predict", json={"records": rows}, timeout=120)
    assert answer.status_code == 200, answer.text
    body = answer.json()
    answered += body["counts"]["answered"]
    taken = [i for i, p in enumerate(body["probabilities"]) if p is not None]
    assert len(taken) >= 450, body["refused"][:5]  # a real row is refused only for a null the rules refuse
    want, want_body = in_process_scores(project, [rows[i] for i in taken])
    assert [body["probabilities"][i] for i in taken] == want_body["probabilities"]
    assert [body["predictions"][i] for i in taken] == want_body["predictions"]
    got = logged_scores(log_url, body["request_id"])  # the log keeps the full-precision score
    assert got.tobytes() == want.tobytes(), (
        f"rows {np.flatnonzero(got != want)[:10]}: {got[:3]} != {want[:3]}"
    )

    # the image's HEALTHCHECK (on /ready) passes; it runs as the unprivileged user
    assert podman("healthcheck", "run", name, check=False).returncode == 0
    assert podman("exec", name, "id", "-u").stdout.strip() == USER_ID

    # a burst, then SIGTERM at once: every answered row is in the log and the exit code is 0
    one = json.dumps({"records": rows[:10]}).encode()
    with ThreadPoolExecutor(8) as pool:
        post = partial(httpx.post, f"{base}/predict", content=one, headers=JSON_TYPE, timeout=60)
        futures = [pool.submit(post) for _ in range(200)]
        wait_until(lambda: sum(f.done() for f in futures) >= 20, timeout_s=60, every_s=0.05)
        podman("kill", "--signal", "TERM", name)
        results = [f.exception() or f.result() for f in futures]
    codes = [r.status_code for r in results if isinstance(r, httpx.Response)]
    answered += sum(
        r.json()["counts"]["answered"]
        for r in results
        if isinstance(r, httpx.Response) and r.status_code == 200
    )
    assert codes.count(200) >= 20 and set(codes) <= {200, 503}, set(codes)
    assert podman("wait", name).stdout.strip() == "0", podman("logs", name).stderr[-3000:]
    assert logged_rows(log_url) == answered, "every answered row is in the PostgreSQL log"


LEFT_OUT_OF_SERVICE = {
    "evidently", "plotly", "statsmodels", "nltk", "litestar", "polyfactory", "faker", "vl-convert-python"
}  # fmt: skip


def installed(image: str) -> set[str]:
    """The distributions installed in `image`'s environment, by normalised name."""
    listing = (
        "import importlib.metadata as m; print('\\n'.join(d.metadata['Name'] for d in m.distributions()))"
    )
    found = podman("run", "--rm", *LIMITS, image, "python", "-c", listing).stdout.split()
    return {n.lower().replace("_", "-") for n in found}


def test_the_image_holds_no_dev_or_test_dependency_and_names_its_commit_and_lock():
    labels = json.loads(podman("image", "inspect", "--format", "{{json .Labels}}", IMAGE).stdout)
    lock = (REPO / "uv.lock").read_bytes()
    import hashlib

    assert labels["mlpipe.uv-lock-sha256"] == hashlib.sha256(lock).hexdigest()
    assert labels["org.opencontainers.image.revision"].split("-")[0] == git(REPO, "rev-parse", "HEAD")

    def names(*flags: str) -> set[str]:
        out = sh(
            [str(REPO / ".venv" / "bin" / "uv"), "export", "--frozen", "--no-hashes", *flags], REPO
        ).stdout
        return {line.split("==")[0].lower() for line in out.splitlines() if "==" in line}

    dev_only = names("--only-dev") - names("--no-dev")
    inside = installed(IMAGE)
    assert dev_only and not dev_only & inside, dev_only & inside
    assert "mlflow" in inside and "pytest" not in inside
    # what the service never imports is left out of its image (Dockerfile, SERVICE_LEAVES_OUT), not of flows'
    assert not LEFT_OUT_OF_SERVICE & inside, LEFT_OUT_OF_SERVICE & inside
    in_flows = installed(FLOWS_IMAGE)
    assert LEFT_OUT_OF_SERVICE <= in_flows and not dev_only & in_flows, LEFT_OUT_OF_SERVICE - in_flows
    user = podman(
        "run", "--rm", *LIMITS, IMAGE, "sh", "-c", "id -u; test -e /app/tests && echo tests; true"
    ).stdout.split()
    assert user == [USER_ID]


@pytest.fixture
def prefect_api(tmp_path):
    """A Prefect server of the test's own on 127.0.0.1 whose scheduler looks every 5 s (not every 60 s), so a
    schedule's run is created soon after the deployment; stopped after the test."""
    port = free_port()
    env = {**UNUSED_PREFECT_SERVICES, "PREFECT_SERVER_SERVICES_SCHEDULER_LOOP_SECONDS": "5"}
    proc = start_prefect_server(port, tmp_path / "prefect-home", env=env)
    yield f"http://127.0.0.1:{port}/api"
    stop_process_group(proc, grace_s=30)


@pytest.fixture
def flows_source(template_repo, tmp_path) -> Path:
    """The repository the flows container clones: a clone of the bundled project (data not yet bootstrapped)
    with a retrain.cron of its own (once a year: the one run is the test's), committed, owned by the images'
    user."""
    require_image(FLOWS_IMAGE)
    source = tmp_path / "source"
    sh(["git", "clone", "-q", str(template_repo), str(source)], tmp_path)
    for key in ("user.email", "user.name"):
        git(source, "config", key, git(template_repo, "config", key))
    edit_params(source, retrain={"cron": CRON})
    commit_all(source, "retrain once a year")
    chown_tree(source)
    return source


def api_post(api: str, path: str, body: dict) -> list | dict:
    answer = httpx.post(f"{api}/{path}", json=body, timeout=10)
    answer.raise_for_status()
    return answer.json()


def running(name: str) -> None:
    state = podman("inspect", "--format", "{{.State.Status}}", name).stdout.strip()
    assert state == "running", f"flows container {state}: {podman('logs', name).stderr[-4000:]}"


def served_deployment(api: str, name: str, timeout_s: float = 300) -> dict:
    """The deployment the container serves, once it is on the server (the clone, the imports, serve())."""

    def found() -> dict | None:
        running(name)
        return next(iter(api_post(api, "deployments/filter", {})), None)

    return wait_until(found, timeout_s=timeout_s, every_s=2)


def wait_for_run(api: str, run_id: str, name: str, timeout_s: float = 900) -> dict:
    """The flow run once it is final: fails at once, with the container's log, when the container stops."""
    deadline = time.monotonic() + timeout_s
    state = "?"
    while time.monotonic() < deadline:
        running(name)
        run = httpx.get(f"{api}/flow_runs/{run_id}", timeout=10).json()
        state = run["state_type"]
        if state in ("COMPLETED", "FAILED", "CRASHED", "CANCELLED"):
            return run
        time.sleep(3)
    raise AssertionError(f"flow run {state} after {timeout_s} s: {podman('logs', name).stderr[-4000:]}")


def test_the_flows_container_serves_the_retrain_deployment_and_completes_a_run_of_it(
    prefect_api, flows_source, tmp_path
):
    # its home mounted from here, so its clone (git history, data.dvc, dvc.lock, MLflow store) can be read
    home = tmp_path / "home"
    home.mkdir()
    chown_tree(home)
    name = f"mlpipe-flows-{uuid.uuid4().hex[:8]}"
    started = time.monotonic()
    try:
        podman(
            "run", "-d", "--name", name, "--network", "host",
            *LIMITS,
            "-v", f"{flows_source}:{flows_source}:ro",
            "-v", f"{home}:/home/mlpipe",
            "-e", f"MLPIPE_GIT_URL={flows_source}", "-e", "MLPIPE_GIT_REF=main",
            "-e", f"PREFECT_API_URL={prefect_api}",
            "-e", f"{KEY_ENV}={KEY}",
            FLOWS_IMAGE,
        )  # fmt: skip
        deployment = served_deployment(prefect_api, name)
        served_after = time.monotonic() - started
        # what `prefect deployment run retrain/project` does: a run scheduled now, for the served runner
        run = api_post(prefect_api, f"deployments/{deployment['id']}/create_flow_run", {})
        run = wait_for_run(prefect_api, run["id"], name)
        assert podman("exec", name, "id", "-u").stdout.strip() == USER_ID
    finally:
        logs = podman("logs", name, check=False).stderr
        remove_container(name)
    total = time.monotonic() - started
    print(f"flows container: deployment served after {served_after:.0f} s, run final after {total:.0f} s")
    # Completed, named after the gate's outcome (the first model of a clone: Promoted)
    assert (run["state_type"], run["state_name"]) == ("COMPLETED", "Promoted"), (
        run["state_name"],
        logs[-3000:],
    )
    assert deployment["name"] == "project" and deployment["schedules"][0]["schedule"]["cron"] == CRON
    # the run is a commit of the container's clone: data and pipeline outputs committed, nothing left
    clone = home / "project"

    def clone_git(*args: str) -> str:
        return git(clone, "-c", "safe.directory=*", *args)

    subjects = clone_git("log", "--format=%s").splitlines()
    assert (
        len(subjects)
        == len(git(flows_source, "-c", "safe.directory=*", "log", "--format=%s").splitlines()) + 2
    )
    assert subjects[1].startswith("data: initial"), subjects
    assert {"data.dvc", "dvc.lock", "metrics.json"} <= set(clone_git("ls-files").splitlines())
    assert clone_git("status", "--porcelain") == ""

    # and a model version registered in the clone's MLflow store, trained from that commit
    params = load_params(clone / "params.yaml")
    client = mlflow_client(f"sqlite:///{clone / 'mlruns' / 'mlflow.db'}")
    versions = client.search_model_versions(f"name='{params.model.name}'")
    assert len(versions) == 1, [(v.version, v.run_id) for v in versions]
    tags = client.get_run(versions[0].run_id).data.tags
    assert tags.get("mlflow.source.git.commit") == clone_git("rev-parse", "HEAD"), tags
