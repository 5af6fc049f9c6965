"""`mlpipe lineage`: the reproducibility checklist of one model, read from the MLflow record:
registry version and aliases -> run -> git commit (clean?) -> data hash -> split hashes -> stage
output hashes -> params -> test metrics -> drift share at training time -> reproduction verdicts."""

from __future__ import annotations

from mlpipe.config import headline_of
from mlpipe.registry import tags as tag
from mlpipe.registry.aliases import aliases_of
from mlpipe.registry.refs import resolve_run, versions_of_run
from mlpipe.registry.reproduce.record import read_record


def model_lineage(client, ref: str) -> dict:
    """The checklist as a dict (the `--json` form)."""
    run = resolve_run(client, ref).run
    run_id = run.info.run_id
    rec = read_record(client, run_id)
    tags = run.data.tags
    versions = []
    for mv in versions_of_run(client, run_id):
        versions.append(
            {
                "name": mv.name,
                "version": str(mv.version),
                "aliases": aliases_of(client, mv.name, mv.version),
                "reproduced": (mv.tags or {}).get(tag.REPRODUCED),
            }
        )
    reproductions = client.search_runs(
        [rec.experiment_id],
        filter_string=f"tags.`{tag.REPRODUCES}` = '{run_id}'",
        order_by=["attributes.start_time ASC"],
    )
    return {
        "registry": versions,
        "run": {
            "run_id": run_id,
            "experiment_id": rec.experiment_id,
            "status": run.info.status,
            "start_time_ms": run.info.start_time,
            "user": tags.get(tag.USER),
            "host": tags.get(tag.HOST),
        },
        "git": {"commit": rec.commit, "clean": not rec.dirty},
        "data_md5": rec.data_md5,
        "split": {k.split(":", 1)[1]: v for k, v in rec.stage_outputs.items() if k.startswith("split:")},
        "stage_outputs": dict(sorted(rec.stage_outputs.items())),
        "model_sha256": rec.model_sha256,
        "params": dict(sorted(run.data.params.items())),
        "metrics": {k: rec.metrics[k] for k in headline_of(rec.metrics)},
        "drift_share": rec.metrics.get("drift_share"),
        "packages": rec.versions,
        "reproductions": [
            {
                "run_id": r.info.run_id,
                "verdict": r.data.tags.get(tag.REPRODUCTION_VERDICT),
                "different": r.data.tags.get(tag.REPRODUCTION_DIFFERENT) or None,
                "start_time_ms": r.info.start_time,
            }
            for r in reproductions
        ],
    }


def render_lineage(d: dict) -> str:
    """The checklist as text, one line per link of the chain (a version's aliases when `d` holds them: read
    when shown, see frozen_lineage)."""

    def version(v: dict) -> str:
        if "aliases" not in v:
            return f"{v['name']} v{v['version']} (aliases move: `mlpipe lineage` reads them when run)"
        return f"{v['name']} v{v['version']} [{', '.join(v['aliases']) or 'no alias'}]"

    reg = "; ".join(version(v) for v in d["registry"]) or "not registered"
    lines = [
        f"registry:        {reg}",
        (
            f"run:             {d['run']['run_id']} "
            f"({d['run']['status']}, by {d['run']['user']}@{d['run']['host']})"
        ),
        (
            f"git commit:      {d['git']['commit']} "
            f"({'clean' if d['git']['clean'] else 'DIRTY: not reproducible'})"
        ),
        f"data md5:        {d['data_md5']}",
    ]
    lines += [f"split:           {path} {md5}" for path, md5 in d["split"].items()]
    lines += [
        f"stage output:    {key} {md5}"
        for key, md5 in d["stage_outputs"].items()
        if not key.startswith("split:")
    ]
    lines.append(f"model sha256:    {d['model_sha256']}")
    lines.append(
        f"params:          {len(d['params'])} values (seed={d['params'].get('seed')}, "
        f"estimator={d['params'].get('train.estimator')}"
        + (f" chose {chosen}" if (chosen := d["params"].get("train.estimator_chosen")) else "")
        + ")"
    )
    lines.append("test metrics:    " + ", ".join(f"{k}={v}" for k, v in d["metrics"].items()))
    lines.append(f"drift share:     {d['drift_share']} (newest batch vs training data, at training time)")
    if d["reproductions"]:
        lines += [
            f"reproduction:    {r['verdict']} (run {r['run_id']}"
            + (f"; different: {r['different']}" if r["different"] else "")
            + ")"
            for r in d["reproductions"]
        ]
    else:
        lines.append("reproduction:    never reproduced (mlpipe reproduce " + d["run"]["run_id"] + ")")
    return "\n".join(lines)


def frozen_lineage(d: dict) -> dict:
    """The checklist without what changes after it is written (pure): the versions' aliases, which the gate,
    `mlpipe promote` and rollback move; an artifact holding them would say `challenger` long after."""
    return d | {"registry": [{k: v for k, v in mv.items() if k != "aliases"} for mv in d["registry"]]}


def log_lineage(client, run_id: str) -> dict:
    """Write lineage.json and lineage.txt as artifacts of the training run (without aliases:
    frozen_lineage); returns the checklist as read now."""
    d = model_lineage(client, run_id)
    client.log_dict(run_id, frozen_lineage(d), "lineage/lineage.json")
    client.log_text(run_id, render_lineage(frozen_lineage(d)), "lineage/lineage.txt")
    return d
