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
from urllib.parse import urlparse

from prefect import flow, get_run_logger, task
from prefect.artifacts import create_table_artifact
from prefect.cache_policies import NONE
from prefect.context import FlowRunContext

from flows.common import setup
from mlpipe.config import PARAMS_FILE, FeaturesCfg, Params, ProjectPaths, TrainCfg
from mlpipe.errors import SnapshotMismatch, SweepRefused
from mlpipe.pipeline.sweep import (
    candidate_seed,
    candidate_train_cfg,
    check_grid,
    expand_grid,
    pick_winner,
    read_verified_train,
    score_candidate,
    scoring_identity,
    training_frames,
    write_hyperparams,
)
from mlpipe.registry import tags as tag
from mlpipe.registry.client import local_store, mlflow_client
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


def _candidate_row(i: int, hp: dict, grid: dict, result: dict, metric: str) -> dict:
    row = {"candidate": i, **{k: hp[k] for k in grid}}
    if "error" in result:
        return row | {f"val_{metric}": None, "fit_s": None, "worker": None, "error": result["error"]}
    return row | {
        f"val_{metric}": result["metrics"][metric],
        "fit_s": result["fit_s"],
        "worker": result["worker"],
    }


def _record_candidates(
    client,
    exp_id: str,
    parent_id: str,
    candidates: list[dict],
    results: list[dict],
    base_tags: dict[str, str],
) -> list[str]:
    """One child run per candidate (tag mlflow.parentRunId), with its hyperparams and validation metrics."""
    from mlflow.entities import Metric, Param

    run_ids = []
    for hp, res in zip(candidates, results, strict=True):
        i = res["index"]
        now = int(time.time() * 1000)
        child = client.create_run(
            exp_id,
            run_name=f"candidate-{i:02d}",
            start_time=res.get("start_ms", now),
            tags={
                **base_tags,
                tag.MLFLOW_PARENT_RUN: parent_id,
                tag.KIND: "sweep-candidate",
                tag.SWEEP: parent_id,
                tag.SWEEP_INDEX: str(i),
                tag.SWEEP_WORKER: res.get("worker") or "",
                **({tag.SWEEP_ERROR: res["error"][:5000]} if "error" in res else {}),
            },
        )
        run_id = child.info.run_id
        params = [Param(f"train.hyperparams.{k}", str(v)) for k, v in hp.items()]
        metrics = [
            Metric("val_rows" if k == "n_test" else f"val_{k}", float(v), now, 0)
            for k, v in res.get("metrics", {}).items()
        ]
        metrics += [Metric("fit_s", float(res["fit_s"]), now, 0)] if "fit_s" in res else []
        client.log_batch(run_id, metrics=metrics, params=params)
        client.set_terminated(
            run_id, "FAILED" if "error" in res else "FINISHED", end_time=res.get("end_ms", now)
        )
        run_ids.append(run_id)
    return run_ids


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


@flow(name="sweep", log_prints=True)
def sweep(
    root: str = ".",
    tracking_uri: str | None = None,
    workers: int | None = None,
    dask_address: str | None = None,
    apply: bool = True,
) -> dict:
    """Grid search over params.yaml `sweep`, candidates on Dask; with `apply`, the winner goes to
    train.hyperparams (committed) and through the retrain flow. Returns a summary."""
    import mlflow

    from mlpipe.registry.tracking import ensure_experiment

    paths, params = setup(root)
    root, uri = str(paths.root), tracking_uri or paths.tracking_uri
    logger = get_run_logger()
    identity = check_ready(paths, params, apply)
    cfg = params.sweep
    metric = params.sweep_metric
    params_text = (paths.root / PARAMS_FILE).read_bytes()
    candidates = expand_grid(params.train.hyperparams, cfg.grid)
    workers = workers or cfg.workers
    where = dask_address or f"LocalCluster(n_workers={workers}, threads_per_worker=1, processes=True)"

    if uri == paths.tracking_uri:
        paths.mlruns.mkdir(exist_ok=True)
    client = mlflow_client(uri)
    exp_id = ensure_experiment(
        client, params.model.experiment, paths.artifact_root if local_store(uri) else None, params.task
    )
    commit = git_commit(paths.root) or ""
    base_tags = {
        tag.GIT_COMMIT: commit,
        tag.GIT_DIRTY: str(git_dirty(paths.root)).lower(),
        tag.DATA_MD5: identity["data_md5"],
        tag.SWEEP_TRAIN_MD5: identity["train_md5"],
        tag.SEED: str(candidate_seed(params)),
    }
    parent = client.create_run(
        exp_id,
        run_name=f"sweep-{identity['data_md5'][:8]}-{commit[:8] or 'nogit'}",
        tags={**base_tags, tag.KIND: "sweep"},
    )
    parent_id = parent.info.run_id
    event("sweep_start", run_id=parent_id, candidates=len(candidates), dask=where)
    try:
        client.log_batch(
            parent_id,
            params=[
                mlflow.entities.Param(k, str(v))
                for k, v in {
                    "sweep.grid": json.dumps(cfg.grid),
                    "sweep.metric": metric,
                    "sweep.candidates": len(candidates),
                    "sweep.validation_fraction": cfg.validation_fraction,
                    "sweep.workers": workers if not dask_address else "",
                    "sweep.dask": where,
                    "seed": params.seed,
                    "sweep.train_seed": candidate_seed(params),
                    "sweep.validation_seed": params.seed_for("validation"),
                    "sweep.split_method": params.split.method,
                    "train.estimator": params.train.estimator,
                }.items()
            ],
        )
        scored = score_grid.with_options(task_runner=dask_runner(workers, dask_address))(
            root, candidates, cfg.validation_fraction, identity["train_sha256"]
        )
        results = sorted(scored["results"], key=lambda r: r["index"])
        child_ids = _record_candidates(client, exp_id, parent_id, candidates, results, base_tags)
        values = [r["metrics"][metric] if "metrics" in r else None for r in results]
        best = pick_winner(values, metric)
        winner = {k: candidates[best][k] for k in cfg.grid}
        rows = [
            _candidate_row(i, hp, cfg.grid, r, metric)
            for i, (hp, r) in enumerate(zip(candidates, results, strict=True))
        ]
        fit_total = sum(r.get("fit_s", 0) for r in results)
        now = int(time.time() * 1000)
        metrics = [
            mlflow.entities.Metric(f"val_{metric}", float(v), now, i)
            for i, v in enumerate(values)
            if v is not None
        ]
        metrics += [
            mlflow.entities.Metric(k, float(v), now, 0)
            for k, v in {
                f"best_val_{metric}": values[best],
                "candidates_wall_s": scored["wall_s"],
                "fit_s_total": fit_total,
                "candidates_span_s": scored["span_s"],
                "rows_fit": scored["rows_fit"],
                "rows_validation": scored["rows_validation"],
            }.items()
        ]
        client.log_batch(parent_id, metrics=metrics)
        client.log_dict(
            parent_id,
            {
                "metric": metric,
                "grid": cfg.grid,
                "winner": best,
                "candidates": rows,
                "child_runs": child_ids,
            },
            "sweep/candidates.json",
        )
        client.set_tag(parent_id, tag.SWEEP_WINNER, json.dumps(winner, sort_keys=True))
        client.set_tag(parent_id, tag.SWEEP_WINNER_RUN, child_ids[best])
        event("sweep_winner", candidate=best, **winner, **{f"val_{metric}": values[best]})
        create_table_artifact(
            rows, key="sweep-candidates", description=f"Validation {metric} per candidate; winner {best}"
        )

        summary = {
            "run_id": parent_id,
            "candidates": rows,
            "winner": best,
            "winner_hyperparams": winner,
            "winner_run_id": child_ids[best],
            "metric": metric,
            "best_value": values[best],
            "candidates_wall_s": scored["wall_s"],
            "candidates_span_s": scored["span_s"],
            "fit_s_total": round(fit_total, 3),
            "dask": where,
            "workers": None if dask_address else workers,
            "applied": False,
            "params_changed": False,
            "commit": None,
            "pipeline": None,
        }
        if apply:
            summary |= _apply(
                paths,
                params,
                uri,
                client,
                parent_id,
                winner,
                (params_text, identity),
                metric,
                values[best],
            )
        client.set_terminated(parent_id, "FINISHED")
    except BaseException:
        client.set_terminated(parent_id, "FAILED")
        raise
    logger.info(
        "sweep %s: winner candidate %s %s (validation %s %s)",
        parent_id,
        best,
        winner,
        metric,
        values[best],
    )
    return summary


def _apply(
    paths: ProjectPaths,
    params: Params,
    uri: str,
    client,
    parent_id: str,
    winner: dict,
    started_with: tuple[bytes, dict],
    metric: str,
    value: float,
) -> dict:
    """Winner -> params.yaml (in place, comments kept) -> git commit -> the retrain flow (DVC stages,
    MLflow run, registry, gate). The params edit waits for any running retrain (project lock)."""
    from flows.retrain import retrain

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
        changed = write_hyperparams(params_file, winner)
        commit = git_commit_paths(
            paths.root,
            [PARAMS_FILE],
            f"sweep: train.hyperparams {json.dumps(winner, sort_keys=True)} "
            f"(best validation {metric} {value}; MLflow run {parent_id})",
        )
    event("sweep_applied", params_changed=changed, commit=commit)
    result = retrain(root=str(paths.root), tracking_uri=uri)
    client.set_tag(parent_id, tag.SWEEP_PIPELINE_RUN, result.run_id)
    client.set_tag(parent_id, tag.SWEEP_MODEL_VERSION, str(result.model_version))
    if commit:
        client.set_tag(parent_id, tag.SWEEP_PARAMS_COMMIT, commit)
    client.set_tag(result.run_id, tag.SWEEP, parent_id)
    return {
        "applied": True,
        "params_changed": changed,
        "commit": commit,
        "pipeline": {
            k: getattr(result, k)
            for k in (
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
        },
    }


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
