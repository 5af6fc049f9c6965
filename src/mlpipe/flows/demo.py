"""The demo's story (`mlpipe demo`): the whole run on the bundled data, in a fresh clone of the project.

bootstrap + train (version 1, champion) -> serve it in the background -> the next period lands as a
labelled batch -> that period is replayed as traffic through the HTTP API, with feedback labels ->
`mlpipe monitor` compares the traffic with the training data (Evidently), finds drift and triggers the
retrain flow (which takes the batch in, trains, and lets the gate decide) -> the service hot-swaps to
the new champion -> more traffic, answered by it -> a table of what happened, with the MLflow runs and
reports. Every step is the real command a user would type (`mlpipe run`, `simulate`, `serve`,
`monitor`), run in the clone; nothing here decides anything the tools did not. `run_demo` returns a
`DemoResult`; the command only prints it."""

from __future__ import annotations

import json
import math
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from mlpipe.errors import AlreadyExists, ToolError
from mlpipe.runtime.shell import run_tool, tool_env

if TYPE_CHECKING:
    import pandas as pd

    from mlpipe.config import Params

BATCH = 100  # records per /predict request of the replay
TOTAL_STEPS = 7


@dataclass(frozen=True)
class DemoStep:
    """One line of the closing table: what happened, in how many seconds, and where to look."""

    name: str
    outcome: str
    seconds: float
    links: tuple[str, ...] = ()


@dataclass(frozen=True)
class DemoResult:
    """The story as it went: the clone it ran in and its steps, in order."""

    dest: Path
    steps: tuple[DemoStep, ...]


@dataclass(frozen=True)
class Replay:
    """What a replay sent: rows answered, requests, refused requests, rows answered by each version."""

    rows: int
    requests: int
    refused: int
    versions: dict[str, int] = field(default_factory=dict)


@dataclass(frozen=True)
class FirstRun:
    """The few fields of `mlpipe run`'s summary the demo reports."""

    run: str | None
    version: str
    roc_auc: str | None


def clone_project(root: Path, dest: Path) -> Path:
    """A clone of the project's committed state (code, params, dvc.yaml, data.dvc): the demo never
    touches the user's own tree, data, registry or DVC store."""
    if dest.exists() and any(dest.iterdir()):
        raise AlreadyExists(f"{dest} is not empty; give --dir a new directory")
    run_tool(["git", "clone", "-q", str(root.resolve()), str(dest)], root)
    return dest


def demo_env(dest: Path) -> dict[str, str]:
    """The clone's own state: its MLflow store, prediction log and Prefect home, whatever the caller's
    environment points at (a Prefect server given by PREFECT_API_URL is still used)."""
    env = tool_env({"PREFECT_HOME": str(dest / ".prefect")})
    for key in ("MLFLOW_TRACKING_URI", "MLPIPE_PREDICTION_LOG_URL"):
        env.pop(key, None)
    return env


def mlpipe_cmd(dest: Path, *args: str, ok: tuple[int, ...] = (0,)) -> subprocess.CompletedProcess:
    proc = run_tool([sys.executable, "-m", "mlpipe.cli", *args], dest, check=False, env=demo_env(dest))
    if proc.returncode not in ok:
        raise ToolError(
            f"`mlpipe {' '.join(args)}` exited {proc.returncode} in {dest}:\n"
            f"{(proc.stderr or proc.stdout).strip()[-3000:]}"
        )
    return proc


def json_records(frame: pd.DataFrame, columns: list[str]) -> list[dict]:
    """Rows as /predict records: plain Python values, missing values as null."""
    return [
        {k: (None if isinstance(v, float) and math.isnan(v) else v) for k, v in row.items()}
        for row in json.loads(frame[columns].to_json(orient="records"))
    ]


def replay(base: str, frame: pd.DataFrame, columns: list[str], target: str) -> Replay:
    """Send `frame` as traffic in requests of BATCH records, each followed by its feedback labels."""
    import httpx

    rows = requests = refused = 0
    versions: dict[str, int] = {}
    with httpx.Client(base_url=base, timeout=60) as client:
        for start in range(0, len(frame), BATCH):
            part = frame.iloc[start : start + BATCH]
            answer = client.post("/predict", json={"records": json_records(part, columns)})
            requests += 1
            if answer.status_code != 200:
                refused += 1
                continue
            body = answer.json()
            version = body["model"]["version"]
            versions[version] = versions.get(version, 0) + len(part)
            rows += len(part)
            client.post(
                "/feedback", json={"request_id": body["request_id"], "labels": [int(v) for v in part[target]]}
            ).raise_for_status()
    return Replay(rows, requests, refused, versions)


def traffic_from(batch: pd.DataFrame, rows: int, time_column: str) -> pd.DataFrame:
    """`rows` flights of the batch spread evenly over its time span, in time order."""
    ordered = batch.sort_values(time_column, kind="stable").reset_index(drop=True)
    step = max(1, len(ordered) // rows)
    return ordered.iloc[::step].head(rows).reset_index(drop=True)


def wait_for_version(base: str, version: str, timeout_s: float) -> bool:
    import httpx

    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{base}/ready", timeout=5).json().get("model_version") == version:
                return True
        except (httpx.HTTPError, ValueError):
            pass
        time.sleep(0.5)
    return False


class _Story:
    """Announces each step as it starts and collects what it did (echo: where the lines go)."""

    def __init__(self, echo: Callable[[str], None]) -> None:
        self.echo = echo
        self.steps: list[DemoStep] = []
        self.t0 = 0.0

    def start(self, n: int, title: str) -> None:
        self.echo(f"[{n}/{TOTAL_STEPS}] {title} ...")
        self.t0 = time.perf_counter()

    def done(self, name: str, outcome: str, links: list[str] | None = None) -> None:
        self.steps.append(
            DemoStep(name, outcome, round(time.perf_counter() - self.t0, 1), tuple(links or []))
        )
        self.echo(f"      {outcome} ({self.steps[-1].seconds} s)")


def run_demo(root: Path, dest: Path, traffic_rows: int, echo: Callable[[str], None]) -> DemoResult:
    """The story, step by step (each announced through `echo` as it starts); returns its steps."""
    from mlpipe.config import load_params
    from mlpipe.runtime.localserver import start_service
    from mlpipe.runtime.shell import stop_process_group

    story = _Story(echo)
    story.start(
        1, f"clone the project into {dest} and run the pipeline (bootstrap, DVC stages, MLflow, gate)"
    )
    clone_project(root, dest)
    first = run_summary(mlpipe_cmd(dest, "run").stdout)
    story.done(
        "train",
        f"version {first.version} trained and promoted (roc_auc {first.roc_auc})",
        [f"MLflow run {first.run}"],
    )
    params = load_params(dest / "params.yaml")

    story.start(2, "serve the champion in the background (mlpipe serve on 127.0.0.1, a free port)")
    base, server = start_service(dest, "--poll-s", "1", env=demo_env(dest))
    try:
        story.done("serve", f"version {first.version} serving at {base} (docs at {base}/docs)")
        _served_story(story, dest, params, base, traffic_rows)
    finally:
        stop_process_group(server)
    return DemoResult(dest, tuple(story.steps))


def _served_story(story: _Story, dest: Path, params: Params, base: str, traffic_rows: int) -> None:
    """Steps 3 to 7, with the champion served at `base`."""
    from mlpipe.data.frames import read_frame
    from mlpipe.data.landing import landed_batches

    columns, target, time_col = (
        list(params.features.columns),
        params.dataset.target,
        params.dataset.time_column,
    )
    story.start(3, "the next period arrives as a labelled batch (mlpipe simulate --next)")
    released = mlpipe_cmd(dest, "simulate", "--next").stdout.strip()
    batch = read_frame(
        landed_batches(dest / params.retrain.landing_dir)[-1]
    )  # the Parquet file simulate wrote
    story.done("new data", released)

    story.start(4, f"replay {traffic_rows} flights of that period as traffic, with feedback labels")
    sent = replay(base, traffic_from(batch, traffic_rows, time_col), columns, target)
    story.done(
        "traffic",
        f"{sent.rows} rows answered in {sent.requests} requests "
        f"({sent.refused} refused); answered by version(s) {sent.versions}",
    )

    story.start(5, "monitor the prediction log against the training data (Evidently); retrain if it says so")
    monitored = json.loads(mlpipe_cmd(dest, "monitor", "--json", ok=(0, 5)).stdout)
    story.done(*monitor_outcome(monitored, dest))

    story.start(6, "what the retrain flow the monitor triggered did, and the gate's decision")
    champion = _champion(dest, params.model.name)
    story.done(*retrain_outcome(monitored.get("retrain_run")))

    story.start(7, f"the service follows the champion alias (now version {champion}); more traffic")
    swapped = wait_for_version(base, champion, 90)
    tail = replay(
        base,
        traffic_from(batch.iloc[len(batch) // 2 :], max(BATCH, traffic_rows // 4), time_col),
        columns,
        target,
    )
    story.done(
        "hot swap",
        f"{'swapped to' if swapped else 'still not serving'} version {champion}; "
        f"{tail.rows} more rows answered by version(s) {tail.versions}",
    )


def monitor_outcome(monitored: dict, dest: Path) -> tuple[str, str, list[str]]:
    """(step name, outcome, links) of step 5, from `mlpipe monitor --json` (another process's output)."""
    verdict = "retire" if monitored["retire"] else ("retrain" if monitored["retrain"] else "healthy")
    verdict = verdict if monitored["judged"] else "no verdict yet"
    report = sorted((dest / "artifacts" / "monitor").glob("*/drift.html"))
    share = (monitored["input_drift"] or {}).get("drift_share")
    outcome = (
        f"{verdict} on {monitored['rows_in_window']} logged rows (input drift share {share}): "
        + ("; ".join(monitored["reasons"]) or "no reason to act")
        + (" (its time includes the retrain flow)" if monitored.get("retrain_run") else "")
    )
    return (
        "monitor",
        outcome,
        [f"MLflow monitoring run {monitored['monitoring_run_id']}"] + [str(p) for p in report[-1:]],
    )


def retrain_outcome(retrained: dict | None) -> tuple[str, str, list[str]]:
    """(step name, outcome, links) of step 6, from the retrain run the monitor's JSON reports, if any."""
    if retrained is None:
        return "retrain", "not triggered", []
    from mlpipe.release.infra import failed_brief

    s = retrained["summary"]
    if not isinstance(s, dict):
        return "retrain", f"flow {retrained['state']}: {s}", []
    outcome = (
        f"flow {retrained['state']}; version {s.get('model_version')} trained on "
        f"{', '.join(s.get('accepted') or []) or 'no new batch'}; gate: {s.get('gate_decision')}"
        + (f" (failed: {failed_brief(s.get('gate_checks') or [])})" if s.get("gate_failed") else "")
    )
    return "retrain", outcome, [f"MLflow run {s['run_id']}"] if s.get("run_id") else []


def run_summary(stdout: str) -> FirstRun:
    """The few fields of `mlpipe run`'s summary the demo reports."""
    lines = {k.strip(): v.strip() for k, _, v in (line.partition(":") for line in stdout.splitlines()) if v}
    metrics = dict(kv.split("=") for kv in lines.get("metrics", "").split(", ") if "=" in kv)
    return FirstRun(
        run=lines.get("mlflow run"),
        version=lines.get("model", "").split("version ")[-1].split(" ")[0],
        roc_auc=metrics.get("roc_auc"),
    )


def _champion(dest: Path, name: str) -> str:
    from mlpipe.config import ProjectPaths
    from mlpipe.registry.aliases import CHAMPION, alias_version
    from mlpipe.registry.client import mlflow_client

    return str(alias_version(mlflow_client(ProjectPaths(dest).tracking_uri), name, CHAMPION))


def demo_table(result: DemoResult) -> str:
    """The final table (markdown), then where to look."""
    steps, dest = result.steps, result.dest
    rows = ["| step | what happened | s |", "|---|---|---|"]
    rows += [f"| {s.name} | {s.outcome.replace('|', '/')} | {s.seconds} |" for s in steps]
    links = [f"- {s.name}: {link}" for s in steps for link in s.links]
    return "\n".join(
        rows
        + [
            "",
            "Where to look:",
            *links,
            f"- the MLflow UI: mlpipe ui --root {dest}   (http://127.0.0.1:5000)",
            f"- the prediction log: {dest / '.mlpipe' / 'predictions.db'}",
        ]
    )
