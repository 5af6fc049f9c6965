"""One monitoring pass over the prediction log: the champion judged on its own logged rows (Evidently drift
against its training data, an HTML/JSON report, live performance where labels came back, the verdict), the
other versions in the window described beside it. `flows/monitor.py` calls `judge_log` and records what it
returns."""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from mlpipe.config import Params, ProjectPaths
from mlpipe.monitoring import monitor as mon
from mlpipe.monitoring.versions import (
    VersionWindow,
    other_version_line,
    read_versions,
    version_figures,
    versions_line,
)


@dataclass(frozen=True)
class Champion:
    """The model the verdict is about: its registry version, its MLflow run and the verified model."""

    version: str
    run: object
    model: object


def load_champion(client, name: str, project_trusted: list[str] | tuple[str, ...] = ()) -> Champion:
    """The version the champion alias points at, loaded by that version (the alias may move meanwhile) with
    the project's train.trusted_types beside mlpipe's."""
    from mlpipe.registry.aliases import CHAMPION, alias_version
    from mlpipe.registry.models import load_registered

    version = alias_version(client, name, CHAMPION)
    ref = f"models:/{name}/{version}" if version else f"models:/{name}@{CHAMPION}"  # refused, naming why
    loaded, resolved = load_registered(client, ref, project_trusted=project_trusted)
    return Champion(str(version), resolved.run, loaded.model)


def training_split(paths: ProjectPaths, run) -> Path:
    """The champion's own train split from the DVC cache by its recorded md5; the project's as a fallback."""
    from mlpipe.registry import tags as tag
    from mlpipe.registry.reproduce.record import cached_output

    return cached_output(paths.root, tag.read(run.data.tags, tag.TRAINSET_MD5), paths.train_split)


def judge_log(
    paths: ProjectPaths, params: Params, champion: Champion, log_url: str
) -> tuple[dict, list[str]]:
    """(the monitor's result, the report files written): each version's rows of the newest window read on
    their own; the champion judged on its rows only (no verdict under monitor.min_rows of them), the other
    versions' figures under `versions`, as information."""
    from mlpipe.data.frames import read_frame
    from mlpipe.model.outputs import classes_of, task_of

    cfg, run = params.monitor, champion.run
    t0 = time.perf_counter()
    windows, in_window = read_versions(log_url, cfg, champion.version)
    own = windows[champion.version]
    line = versions_line(champion.version, windows)
    result = {
        "champion_run_id": run.info.run_id,
        "champion_version": champion.version,
        "champion_rows": own.rows,
        "champion": line,
        "rows_in_window": in_window,
        "rows_checked": own.checked,
        "read_s": round(time.perf_counter() - t0, 3),
    }
    trained = dict(run.data.metrics)
    train = reference = None
    if any(w.rows >= cfg.min_rows for w in windows.values()):
        train = read_frame(training_split(paths, run))
        reference = mon.reference_sample(
            train, champion.model, params.features, cfg.reference_rows, params.seed_for("monitor_reference")
        )
    task, classes = task_of(champion.model), classes_of(champion.model)
    inputs = prediction = live = None
    files: list[str] = []
    if own.rows >= cfg.min_rows:
        inputs, prediction, live, files, timings = _judge_own(
            paths, params, champion, own, train, reference, log_url, trained, task, classes
        )
        result |= timings
    others = {
        v: version_figures(w, reference, params.features, cfg, params.evaluate.threshold, task, classes)
        for v, w in windows.items()
        if v != champion.version
    }
    decision = mon.monitor_verdict(
        cfg, own.rows, inputs, prediction, live, trained, params.monitor_metric, own=line
    )
    result |= {
        "input_drift": inputs,
        "prediction_drift": prediction,
        "live_metrics": live,
        "labels": own.labelled,
        "training_metric": trained.get(params.monitor_metric),
        "metric": params.monitor_metric,
        "versions": others,
        "version_lines": [other_version_line(v, f, params.monitor_metric) for v, f in others.items()],
        **decision,
    }
    return result, files


def _judge_own(
    paths: ProjectPaths,
    params: Params,
    champion: Champion,
    own: VersionWindow,
    train: pd.DataFrame,
    reference: pd.DataFrame,
    log_url: str,
    trained: dict,
    task: str,
    classes: list | None,
) -> tuple[dict, dict, dict | None, list[str], dict]:
    """(input drift, prediction drift, live metrics, report files, timings) of the champion's own rows; a
    sampled score near its threshold that could flip the decision is confirmed on every one of its rows."""
    from mlpipe.monitoring.drift import describe_side, save_drift
    from mlpipe.registry import tags as tag

    cfg, run, window = params.monitor, champion.run, own.frame
    current = mon.coerce_like(window, reference, params.features)
    t1 = time.perf_counter()
    inputs, prediction, snapshot = mon.drift_summaries(reference, current, params.features)
    timings: dict = {"evidently_s": round(time.perf_counter() - t1, 3)}
    time_col = params.dataset.time_column
    context = {
        "title": f"Input drift: prediction log vs training data of {params.model.name} (champion)",
        "reference": describe_side(
            f"training split of run {run.info.run_id}",
            f"DVC md5 {tag.read(run.data.tags, tag.TRAINSET_MD5, '') or 'unknown'}",
            train[time_col] if time_col in train.columns else None,
            len(train),
            len(reference),
        ),
        "current": describe_side(
            f"prediction log: version {champion.version}'s rows of the newest {cfg.window_rows}",
            "rows, not a file",
            window.get(mon.LOGGED_AT),
            own.rows,
            len(current),
        ),
    }
    html, js, _ = save_drift(
        snapshot, paths.artifacts / "monitor" / time.strftime("%Y%m%dT%H%M%S"), context=context
    )
    live = mon.live_performance(window, params.evaluate.threshold, cfg.min_labels, task, classes)
    verdicts = inputs["verdicts"] | prediction["verdicts"]
    sampled = len(window) < own.rows or len(reference) < len(train)
    metric = params.monitor_metric
    if sampled and mon.decision_at_stake(cfg, own.rows, verdicts, params.features, live, trained, metric):
        # A sampled score near its threshold could flip the decision: Evidently on every row decides.
        whole = mon.reference_sample(
            train, champion.model, params.features, len(train), params.seed_for("monitor_reference")
        )
        verdicts = mon.confirm_borderline(
            log_url, cfg.window_rows, whole, verdicts, params.features, champion.version
        )
        inputs, prediction = mon.summaries_from_verdicts(verdicts, params.features)
        timings["confirmed_on_every_row"] = sorted(c for c, v in verdicts.items() if v.get("confirmed"))
    return inputs, prediction, live, [str(html), str(js)], timings
