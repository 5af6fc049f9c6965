"""The sweep as MLflow records it: one parent run (the grid, seeds and where candidates ran as params; the
winner as tags; each candidate's validation value as a step of one metric; the candidate table as an
artifact) and one child run per candidate. What the records say is decided by mlpipe.pipeline.sweep; this
module only writes it."""

from __future__ import annotations

import json
import time
from typing import Any

from mlpipe.pipeline.sweep import SweepChoice
from mlpipe.registry import tags as tag


def sweep_tags(commit: str, dirty: bool, identity: dict[str, str], seed: int) -> dict[str, str]:
    """Tags shared by the parent and every child: the code, the data and train split, the seed."""
    return {
        tag.GIT_COMMIT: commit,
        tag.GIT_DIRTY: str(dirty).lower(),
        tag.DATA_MD5: identity["data_md5"],
        tag.SWEEP_TRAIN_MD5: identity["train_md5"],
        tag.SEED: str(seed),
    }


def open_sweep(client, exp_id: str, name: str, tags: dict[str, str], params: dict[str, Any]) -> str:
    """The parent run, with the sweep's settings as params. Returns its id."""
    from mlflow.entities import Param

    parent_id = client.create_run(exp_id, run_name=name, tags={**tags, tag.KIND: "sweep"}).info.run_id
    client.log_batch(parent_id, params=[Param(k, str(v)) for k, v in params.items()])
    return parent_id


def record_candidates(
    client, exp_id: str, parent_id: str, candidates: list[dict], results: list[dict], tags: dict[str, str]
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
                **tags,
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


def record_choice(
    client,
    parent_id: str,
    choice: SweepChoice,
    metric: str,
    figures: dict[str, float],
    grid: dict,
    child_ids: list[str],
) -> None:
    """On the parent: each candidate's value as a step of val_<metric>, the best value and `figures`
    (timings, rows) as metrics, the candidate table as an artifact, the winner as tags."""
    from mlflow.entities import Metric

    now = int(time.time() * 1000)
    metrics = [
        Metric(f"val_{metric}", float(v), now, i) for i, v in enumerate(choice.values) if v is not None
    ]
    best = {f"best_val_{metric}": choice.values[choice.best], **figures}
    metrics += [Metric(k, float(v), now, 0) for k, v in best.items()]
    client.log_batch(parent_id, metrics=metrics)
    table = {
        "metric": metric,
        "grid": grid,
        "winner": choice.best,
        "candidates": choice.rows,
        "child_runs": child_ids,
    }
    client.log_dict(parent_id, table, "sweep/candidates.json")
    client.set_tag(parent_id, tag.SWEEP_WINNER, json.dumps(choice.winner, sort_keys=True))
    client.set_tag(parent_id, tag.SWEEP_WINNER_RUN, child_ids[choice.best])


def record_applied(client, parent_id: str, pipeline_run_id: str, version, commit: str | None) -> None:
    """The winner's way into the pipeline, both ways: the parent names the pipeline run, model version and
    params commit; the pipeline run names the sweep."""
    client.set_tag(parent_id, tag.SWEEP_PIPELINE_RUN, pipeline_run_id)
    client.set_tag(parent_id, tag.SWEEP_MODEL_VERSION, str(version))
    if commit:
        client.set_tag(parent_id, tag.SWEEP_PARAMS_COMMIT, commit)
    client.set_tag(pipeline_run_id, tag.SWEEP, parent_id)
