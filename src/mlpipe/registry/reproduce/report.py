"""The verdict as a person and MLflow read it: one line, a table, and its own MLflow run tagged on the
original run and its versions."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

from mlpipe.registry import tags as tag
from mlpipe.registry.refs import versions_of_run
from mlpipe.registry.reproduce.compare import Row
from mlpipe.registry.reproduce.record import Recorded


@dataclass
class Verdict:
    ref: str
    run_id: str
    commit: str
    data_md5: str
    rows: list[Row] = field(default_factory=list)
    reproduction_run_id: str | None = None
    checkout: str | None = None  # kept isolated checkout (--keep)
    environment: str = ""  # where the stages ran (runtime.environments.Environment.describe)

    @property
    def identical(self) -> bool:
        return all(r.same for r in self.rows if r.counts)

    def as_dict(self) -> dict:
        def pair(item: str) -> dict:
            row = next((r for r in self.rows if r.item == item), None)
            return {"original": row.original, "reproduced": row.reproduced} if row else {}

        metrics = [r for r in self.rows if r.item.startswith("metric:")]
        return {
            "ref": self.ref,
            "run_id": self.run_id,
            "identical": self.identical,
            "commit": self.commit,
            "data_md5": self.data_md5,
            "model_sha256": pair("model_sha256"),
            "predictions_identical": next((r.same for r in self.rows if r.item == "predictions"), False),
            "predictions_sha256": pair("predictions"),
            "metrics": {
                "original": {r.item[7:]: r.original for r in metrics},
                "reproduced": {r.item[7:]: r.reproduced for r in metrics},
            },
            "different": [r.item for r in self.rows if r.counts and not r.same],
            "rows": [asdict(r) for r in self.rows],
            "reproduction_run_id": self.reproduction_run_id,
            "checkout": self.checkout,
            "environment": self.environment,
        }


def verdict_line(v: Verdict) -> str:
    """The verdict in one line; when NOT IDENTICAL, the cause first: the environment rows (mlpipe's
    version and code hash, packages) that differ, else the items that differ. Pure."""
    if v.identical:
        return "verdict: IDENTICAL"
    env = [r for r in v.rows if not r.counts and not r.same]
    causes = [
        f"{r.item[4:]} {_short(r.original)} (recorded) vs {_short(r.reproduced)} (reproduced)" for r in env
    ]
    different = ", ".join(r.item for r in v.rows if r.counts and not r.same)
    if causes:
        return f"verdict: NOT IDENTICAL, cause: {'; '.join(causes)} (differ: {different})"
    return f"verdict: NOT IDENTICAL, same mlpipe and packages; differ: {different}"


def render_table(v: Verdict) -> str:
    width = max(len(r.item) for r in v.rows) if v.rows else 10
    lines = [
        verdict_line(v),
        f"reproduce {v.ref}: run {v.run_id}, commit {v.commit[:12]}, data md5 {v.data_md5}",
        *([f"environment: {v.environment}"] if v.environment else []),
        f"{'':2}{'item':<{width}}  {'original':<36}  {'reproduced':<36}  verdict",
    ]
    for r in v.rows:
        mark = "same" if r.same else ("DIFFERENT" if r.counts else "differs (environment, informative)")
        lines.append(f"{'':2}{r.item:<{width}}  {_short(r.original):<36}  {_short(r.reproduced):<36}  {mark}")
    lines.append(
        f"verdict: {'IDENTICAL' if v.identical else 'NOT IDENTICAL'}"
        + ("" if v.identical else f" ({', '.join(r.item for r in v.rows if r.counts and not r.same)})")
    )
    return "\n".join(lines)


def _short(value: object) -> str:
    text = str(value)
    return text if len(text) <= 36 else text[:33] + "..."


def log_reproduction(client, rec: Recorded, v: Verdict) -> str:
    """The reproduction as its own run (tags + verdict JSON + table), and its verdict on the original
    run and model versions, so the MLflow UI shows which models have been proven."""
    from datetime import UTC, datetime

    word = "identical" if v.identical else "different"
    run = client.create_run(
        rec.experiment_id,
        run_name=f"reproduce-{rec.run_id[:8]}",
        tags={
            tag.REPRODUCES: rec.run_id,
            tag.REPRODUCTION_VERDICT: word,
            tag.REPRODUCTION_DIFFERENT: ",".join(r.item for r in v.rows if r.counts and not r.same)[:5000],
            tag.GIT_COMMIT: rec.commit,
            tag.DATA_MD5: rec.data_md5,
            tag.KIND: "reproduction",
        },
    )
    rid = run.info.run_id
    client.log_metric(rid, "identical", float(v.identical))
    client.log_dict(rid, {**v.as_dict(), "reproduction_run_id": rid}, "reproduction.json")
    client.log_text(rid, render_table(v), "reproduction.txt")
    client.set_terminated(rid, "FINISHED")
    stamp = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    note = f"{word} ({stamp}, run {rid})"
    client.set_tag(rec.run_id, tag.REPRODUCED, note)
    for mv in versions_of_run(client, rec.run_id):
        client.set_model_version_tag(mv.name, mv.version, tag.REPRODUCED, note)
    return rid
