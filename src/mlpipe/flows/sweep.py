"""The sweep flow: every candidate of params.yaml `sweep.grid` fitted and scored as a Prefect task on
Dask workers (a local cluster, or an existing scheduler), each recorded as a child MLflow run under one
parent run; the winner is written to train.hyperparams, committed, and produced by the retrain flow
(DVC), so it is reproducible from commit + data hash like every other model. The engine behind
`mlpipe sweep`.

Workers only compute: the train split is read and hash-checked once here, sent to them through Dask,
and they return metrics. MLflow, git and DVC are touched by this process only, DVC only after the
candidates are done (one DVC at a time, see STACK.md).
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import socket
import time
from dataclasses import replace
from typing import Any
from urllib.parse import urlparse

from prefect import flow, get_run_logger, task
from prefect.artifacts import create_table_artifact
from prefect.cache_policies import NONE
from prefect.context import FlowRunContext

from mlpipe.config import PARAMS_FILE, FeaturesCfg, Params, ProjectPaths, TrainCfg
from mlpipe.errors import SnapshotMismatch, SweepRefused
from mlpipe.flows.common import setup
from mlpipe.pipeline.sweep import (
    SweepResult,
    candidate_seed,
    candidate_train_cfg,
    check_grid,
    choose,
    expand_grid,
    read_verified_train,
    score_candidate,
    scoring_identity,
    training_frames,
    write_hyperparams,
)
from mlpipe.registry.client import local_store, mlflow_client
from mlpipe.registry.sweep_runs import (
    open_sweep,
    record_applied,
    record_candidates,
    record_choice,
    sweep_tags,
)
from mlpipe.runtime.git import git_commit, git_commit_paths, git_dirty
from mlpipe.runtime.lock import project_lock
from mlpipe.runtime.logs import event

LOOPBACK = ("127.0.0.1", "localhost", "::1")


# No timeout: Prefect cannot interrupt a sync task in a worker thread anyway (it only warns); Dask
# reschedules a candidate whose worker dies.
@task(name="candidate", task_run_name="candidate-{index}", cache_policy=NONE)
def fit_candidate(
    index: int,
    train: TrainCfg,
    features: FeaturesCfg,
    seed: int,
    threshold: float,
    data: dict,
    task: str,
    positive_class: str | int | None = None,
) -> dict:
    """On a Dask worker: fit one candidate on the fit part, score it on the validation part. Frames in,
    metrics out; no files, no MLflow, no DVC."""
    start = time.time()
    scored = score_candidate(
        train,
        features,
        data["X_fit"],
        data["y_fit"],
        data["X_val"],
        data["y_val"],
        seed,
        threshold,
        task,
        positive_class,
    )
    event("candidate", index=index, fit_s=scored["fit_s"], **dict(list(scored["metrics"].items())[:2]))
    return {
        "index": index,
        **scored,
        "start_ms": int(start * 1000),
        "end_ms": int(time.time() * 1000),
        "worker": f"{socket.gethostname()}:{os.getpid()}",
        "identity": scoring_identity(),
    }


def _share(frames: dict) -> dict:
    """Send the frames to every Dask worker once (not once per task); other task runners get them as
    they are."""
    runner = FlowRunContext.get().task_runner
    client = getattr(runner, "client", None)
    if client is None or not hasattr(client, "scatter"):
        return frames
    names = list(frames)
    return dict(
        zip(names, client.scatter([frames[n] for n in names], broadcast=True, hash=False), strict=True)
    )


@flow(name="sweep-candidates")
def score_grid(root: str, candidates: list[dict], validation_fraction: float, train_sha256: str) -> dict:
    """Every candidate as a task on this flow's task runner (Dask); returns each one's result or error."""
    paths, params = setup(root)
    train, identity = read_verified_train(paths)
    if identity["train_sha256"] != train_sha256:
        raise SnapshotMismatch(
            f"{paths.train_split}: changed since the sweep started (rule: one snapshot per sweep)"
        )
    frames = training_frames(train, params, validation_fraction)
    t0 = time.perf_counter()  # from here: the local cluster's start, the data sent, every candidate scored
    data = _share(frames)
    futures = [
        fit_candidate.submit(
            i,
            candidate_train_cfg(params.train, hp),
            params.features,
            candidate_seed(params),
            params.evaluate.threshold,
            data,
            params.task,
            params.dataset.positive_class,
        )
        for i, hp in enumerate(candidates)
    ]
    results, ours = [], scoring_identity()
    for i, future in enumerate(futures):
        try:
            result = future.result()
        except Exception as exc:  # one bad candidate (a value the estimator refuses) does not sink the others
            result = {"index": i, "error": f"{type(exc).__name__}: {exc}"}
        theirs = result.pop("identity", ours)
        if theirs != ours:  # a worker on another machine with other packages or other mlpipe code
            differ = sorted(k for k in ours if theirs.get(k) != ours[k])
            result = {
                "index": i,
                "worker": result.get("worker"),
                "error": (
                    f"worker {result.get('worker')} has { ({k: theirs.get(k) for k in differ}) }, this flow "
                    f"{ ({k: ours[k] for k in differ}) } "
                    "(rule: candidates are scored with the pipeline's exact packages and code)"
                ),
            }
        results.append(result)
    done = [r for r in results if "start_ms" in r]
    span_s = (max(r["end_ms"] for r in done) - min(r["start_ms"] for r in done)) / 1000 if done else 0.0
    return {
        "results": results,
        "wall_s": round(time.perf_counter() - t0, 3),
        "span_s": round(span_s, 3),
        "rows_fit": len(frames["X_fit"]),
        "rows_validation": len(frames["X_val"]),
    }


def dask_runner(workers: int, address: str | None):
    """The Dask task runner: an existing scheduler at `address`, else a local cluster of `workers`
    processes with one thread each, on 127.0.0.1, no dashboard; stopped when the flow ends."""
    from prefect_dask import DaskTaskRunner

    if address:
        return DaskTaskRunner(address=address)
    # No dashboard; the scheduler's own HTTP routes (health, metrics) on a free loopback port, not 8787.
    return DaskTaskRunner(
        cluster_class="distributed.LocalCluster",
        cluster_kwargs={
            "n_workers": workers,
            "threads_per_worker": 1,
            "processes": True,
            "host": "127.0.0.1",
            "dashboard_address": None,
            "scheduler_kwargs": {"dashboard_address": "127.0.0.1:0"},
            "silence_logs": logging.WARNING,
        },
    )


def check_ready(paths: ProjectPaths, params: Params, apply: bool) -> dict[str, str]:
    """Refusals before anything runs or is recorded: no grid, a grid the estimator cannot take, batches
    waiting to be ingested (the winner would be trained on other data), a split DVC did not record for
    the current data and params. Returns the train split's identity (hashes)."""
    from mlpipe.data.landing import landed_batches

    if params.sweep is None:
        raise SweepRefused(
            f"{paths.root / PARAMS_FILE}: no `sweep:` section (rule: the grid is declared in params.yaml)"
        )
    waiting = landed_batches(paths.root / params.retrain.landing_dir)
    if apply and waiting:
        raise SweepRefused(
            f"{len(waiting)} batch(es) wait in {params.retrain.landing_dir}/ (rule: the winner is trained on "
            "the data it was chosen on; run `mlpipe run` first)"
        )
    check_grid(params.train, params.features, params.sweep.grid, params.task)
    return read_verified_train(paths)[1]


def sweep_plan(params: Params, workers: int | None, dask_address: str | None) -> dict[str, Any]:
    """The sweep's settings as the parent run's params (pure): the grid, metric, seeds, where it runs."""
    cfg = params.sweep
    where = dask_address or f"LocalCluster(n_workers={workers}, threads_per_worker=1, processes=True)"
    return {
        "sweep.grid": json.dumps(cfg.grid),
        "sweep.metric": params.sweep_metric,
        "sweep.candidates": len(expand_grid(params.train.hyperparams, cfg.grid)),
        "sweep.validation_fraction": cfg.validation_fraction,
        "sweep.workers": workers if not dask_address else "",
        "sweep.dask": where,
        "seed": params.seed,
        "sweep.train_seed": candidate_seed(params),
        "sweep.validation_seed": params.seed_for("validation"),
        "sweep.split_method": params.split.method,
        "train.estimator": params.train.estimator,
    }


def sweep_experiment(paths: ProjectPaths, params: Params, uri: str):
    """(client, experiment id) of the project's experiment in the store at `uri`."""
    from mlpipe.registry.tracking import ensure_experiment

    if uri == paths.tracking_uri:
        paths.mlruns.mkdir(exist_ok=True)
    client = mlflow_client(uri)
    artifact_root = paths.artifact_root if local_store(uri) else None
    return client, ensure_experiment(client, params.model.experiment, artifact_root, params.task)


@flow(name="sweep", log_prints=True)
def sweep(
    root: str = ".",
    tracking_uri: str | None = None,
    workers: int | None = None,
    dask_address: str | None = None,
    apply: bool = True,
) -> SweepResult:
    """Grid search over params.yaml `sweep`, candidates on Dask; with `apply`, the winner goes to
    train.hyperparams (committed) and through the retrain flow."""
    paths, params = setup(root)
    uri = tracking_uri or paths.tracking_uri
    identity = check_ready(paths, params, apply)  # the train split's hashes, checked again on the workers
    params_text = (paths.root / PARAMS_FILE).read_bytes()  # the winner is written to these params only
    grid, metric = params.sweep.grid, params.sweep_metric
    candidates = expand_grid(params.train.hyperparams, grid)
    workers = workers or params.sweep.workers
    plan = sweep_plan(params, workers, dask_address)
    client, exp_id = sweep_experiment(paths, params, uri)
    commit = git_commit(paths.root) or ""
    tags = sweep_tags(commit, git_dirty(paths.root), identity, candidate_seed(params))
    name = f"sweep-{identity['data_md5'][:8]}-{commit[:8] or 'nogit'}"
    parent_id = open_sweep(client, exp_id, name, tags, plan)
    event("sweep_start", run_id=parent_id, candidates=len(candidates), dask=plan["sweep.dask"])
    try:
        runner = dask_runner(workers, dask_address)
        scored = score_grid.with_options(task_runner=runner)(
            str(paths.root), candidates, params.sweep.validation_fraction, identity["train_sha256"]
        )
        ran_on = (plan["sweep.dask"], None if dask_address else workers)
        result = scored_result = _record_scored(
            client, exp_id, parent_id, tags, candidates, grid, metric, scored, ran_on
        )
        if apply:
            result = _apply(paths, params, uri, client, result, (params_text, identity))
        client.set_terminated(parent_id, "FINISHED")
    except BaseException:
        client.set_terminated(parent_id, "FAILED")
        raise
    get_run_logger().info(
        "sweep %s: winner candidate %s %s (validation %s %s)",
        parent_id,
        scored_result.winner,
        scored_result.winner_hyperparams,
        metric,
        scored_result.best_value,
    )
    return result


def _record_scored(
    client,
    exp_id: str,
    parent_id: str,
    tags: dict,
    candidates: list[dict],
    grid: dict,
    metric: str,
    scored: dict,
    ran_on: tuple[str, int | None],
) -> SweepResult:
    """The scored candidates recorded (a child run each, the choice on the parent, an event, the Prefect
    table); returns the sweep's result before any apply. `ran_on`: (where candidates ran, workers)."""
    results = sorted(scored.pop("results"), key=lambda r: r["index"])
    choice = choose(candidates, grid, results, metric)
    child_ids = record_candidates(client, exp_id, parent_id, candidates, results, tags)
    fit_total = round(sum(r.get("fit_s", 0) for r in results), 3)
    figures = {
        "candidates_wall_s": scored["wall_s"],
        "fit_s_total": fit_total,
        "candidates_span_s": scored["span_s"],
        "rows_fit": scored["rows_fit"],
        "rows_validation": scored["rows_validation"],
    }
    record_choice(client, parent_id, choice, metric, figures, grid, child_ids)
    event(
        "sweep_winner",
        candidate=choice.best,
        **choice.winner,
        **{f"val_{metric}": choice.values[choice.best]},
    )
    create_table_artifact(
        choice.rows,
        key="sweep-candidates",
        description=f"Validation {metric} per candidate; winner {choice.best}",
    )
    return SweepResult(
        run_id=parent_id,
        candidates=choice.rows,
        winner=choice.best,
        winner_hyperparams=choice.winner,
        winner_run_id=child_ids[choice.best],
        metric=metric,
        best_value=choice.values[choice.best],
        candidates_wall_s=scored["wall_s"],
        candidates_span_s=scored["span_s"],
        fit_s_total=fit_total,
        dask=ran_on[0],
        workers=ran_on[1],
    )


def _apply(
    paths: ProjectPaths,
    params: Params,
    uri: str,
    client,
    result: SweepResult,
    started_with: tuple[bytes, dict],
) -> SweepResult:
    """Winner -> params.yaml (in place, comments kept) -> git commit -> the retrain flow (DVC stages,
    MLflow run, registry, gate). The params edit waits for any running retrain (project lock)."""
    from mlpipe.flows.retrain import retrain

    params_file = paths.root / PARAMS_FILE
    params_text, identity = started_with
    with project_lock(paths.lock_file, params.retrain.lock_timeout_s):
        if params_file.read_bytes() != params_text:
            raise SweepRefused(
                f"{params_file}: changed while the sweep ran (rule: the winner is written to the "
                "params it was chosen with); run the sweep again"
            )
        if read_verified_train(paths)[1] != identity:
            raise SweepRefused(
                f"{paths.train_split}: a run changed the split while the sweep ran (rule: the winner "
                "is trained on the data it was chosen on); run the sweep again"
            )
        changed = write_hyperparams(params_file, result.winner_hyperparams)
        commit = git_commit_paths(
            paths.root,
            [PARAMS_FILE],
            f"sweep: train.hyperparams {json.dumps(result.winner_hyperparams, sort_keys=True)} "
            f"(best validation {result.metric} {result.best_value}; MLflow run {result.run_id})",
        )
    event("sweep_applied", params_changed=changed, commit=commit)
    run = retrain(root=str(paths.root), tracking_uri=uri)
    record_applied(client, result.run_id, run.run_id, run.model_version, commit)
    pipeline = {k: getattr(run, k) for k in PIPELINE_FIELDS}
    return replace(result, applied=True, params_changed=changed, commit=commit, pipeline=pipeline)


PIPELINE_FIELDS = (
    "run_id",
    "model_version",
    "aliases",
    "model_sha256",
    "metrics",
    "stages_run",
    "commit",
    "git_dirty",
    "gate_decision",
    "verdict",
)


@contextlib.contextmanager
def workers_reach_prefect(dask_address: str | None):
    """Pin the Prefect API URL for the run, so the Dask workers (which get it with the task's context)
    report to the same API as this process, rather than each starting a temporary server of its own.
    Without PREFECT_API_URL that is this process's temporary server, on 127.0.0.1: fine for a local
    cluster, unreachable from workers on other machines, which need a shared server."""
    from prefect.settings import PREFECT_API_URL, temporary_settings

    if PREFECT_API_URL.value():
        yield PREFECT_API_URL.value()
        return
    host = (
        urlparse(dask_address if "://" in dask_address else f"tcp://{dask_address}").hostname
        if dask_address
        else None
    )
    if host is not None and host not in LOOPBACK:
        raise SweepRefused(
            f"--dask-address {dask_address}: workers on another machine need a shared Prefect server "
            "(rule: set PREFECT_API_URL here and on the workers)"
        )
    from prefect.server.api.server import SubprocessASGIServer

    server = SubprocessASGIServer()  # the same temporary server Prefect would start for this process
    server.start()
    with temporary_settings(updates={PREFECT_API_URL: server.api_url}):
        yield server.api_url


def run_sweep(
    root: str,
    tracking_uri: str,
    workers: int | None = None,
    dask_address: str | None = None,
    apply: bool = True,
):
    """The sweep flow's final state, with the Prefect API pinned for its workers."""
    check_ready(*setup(root), apply)  # refused in seconds, before a Prefect server or a cluster starts
    import distributed  # noqa: F401  (its import sets its loggers to INFO: quiet them after it)

    logging.getLogger("distributed").setLevel(logging.WARNING)  # per-connection lines of the scheduler
    with workers_reach_prefect(dask_address):
        return sweep(
            root=root,
            tracking_uri=tracking_uri,
            workers=workers,
            dask_address=dask_address,
            apply=apply,
            return_state=True,
        )
