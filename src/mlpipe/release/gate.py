"""The promotion gate: a registered challenger becomes `champion` only when it earns it.

(a) data validation passed, the record is reproducible, the infra check holds the `deploy` budgets and
the model beats the trivial one (the train split's prior / mean) on `gate.baseline_metrics`; (b) on the
*same* held-out rows it is not worse than the champion by more than `gate.tolerance` per metric; (c) the
differential test (`mlpipe diff`) judges what changed, not how much: the rows the champion got right that
the challenger gets wrong may outnumber those it newly gets right by at most `gate.max_net_negative_flips`
of the rows, and within each actual class by `gate.max_class_regression` of its rows, or an override with
a reason is recorded. Every criterion's value, bound and verdict go on the MLflow run and model version.
Promotion moves `champion` to the challenger and the old champion to `previous` (registry.aliases), under the
model's registry lock and only while `champion` still names the version the challenger was judged against."""

from __future__ import annotations

import getpass
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path

from mlpipe.config import GateCfg, Params, ProjectPaths, lower_is_better
from mlpipe.errors import ModelRefused, PromotionRefused
from mlpipe.model.loading import LoadedModel
from mlpipe.registry import tags as tag
from mlpipe.registry.aliases import (
    CHAMPION,
    PREVIOUS,
    REGISTRY_WAIT_S,
    alias_version,
    move_champion,
    registry_lock,
)
from mlpipe.registry.client import mlflow_client
from mlpipe.registry.judged import PASSED, PROMOTED, write_judged
from mlpipe.registry.refs import MODEL_REF, resolve_run, versions_of_run
from mlpipe.release.infra import Check, checks_as_dicts, failed_brief, failed_lines, infra_check
from mlpipe.runtime.logs import event
from mlpipe.runtime.signing import signing_key_for_writing

# ---- criteria (pure) ----------------------------------------------------------------------------


def metric_checks(
    challenger: dict[str, float], champion: dict[str, float], tolerance: dict[str, float]
) -> list[Check]:
    """Per metric: the challenger may trail the champion by at most the tolerance (direction-aware)."""
    checks = []
    for name, tol in sorted(tolerance.items()):
        new, old = float(challenger[name]), float(champion[name])
        if not lower_is_better(name):
            bound = round(old - tol, 6)
            checks.append(
                Check(
                    f"metric.{name}",
                    round(new, 6),
                    bound,
                    new >= bound,
                    f"(champion {round(old, 6)}, at least)",
                )
            )
        else:
            bound = round(old + tol, 6)
            checks.append(
                Check(
                    f"metric.{name}",
                    round(new, 6),
                    bound,
                    new <= bound,
                    f"(champion {round(old, 6)}, at most)",
                )
            )
    return checks


REQUIRED_RECORD = (tag.GIT_COMMIT, tag.DATA_MD5, tag.MODEL_SHA256)


def record_check(tags: dict[str, str]) -> Check:
    """A version is promotable only from a complete record of a committed tree: its commit, data hash and
    model sha256 are on the run, and the tree was clean (pure)."""
    missing = [k for k in REQUIRED_RECORD if not tag.read(tags, k)]
    dirty = tags.get(tag.GIT_DIRTY) != "false"
    problems = ([f"missing {', '.join(missing)}"] if missing else []) + (["dirty tree"] if dirty else [])
    if tags.get(tag.EXPERIMENT):
        problems.append("an experiment")
    return Check(
        "record.reproducible",
        "; ".join(problems) or "complete, clean tree",
        "commit + data + model sha256 from a clean tree",
        not problems,
    )


def _overridable(check: Check, override: str) -> Check:
    """A differential criterion passes with a recorded override, which its detail names."""
    if check.passed or not override:
        return check
    return replace(check, passed=True, detail=f"{check.detail} (override: {override})".strip())


def diff_check(changed_share: float, bound: float, override: str) -> Check:
    """Churn (`gate.max_changed_share`, when set): the share of answers that changed at all."""
    check = Check("diff.changed_share", round(changed_share, 6), bound, changed_share <= bound)
    return _overridable(check, override)


MIN_CLASS_ROWS = 30  # a class with fewer test rows is shown, not judged: a few rows are noise


def flip_checks(flipped: dict, gate: GateCfg) -> list[Check]:
    """The differential test on `release.diff.flips` (pure): the negative flips may exceed the positive
    ones by at most `gate.max_net_negative_flips` of the rows; for classes, within each actual class (of at
    least MIN_CLASS_ROWS rows) by at most `gate.max_class_regression` of its rows."""
    rows, noun = flipped["rows"], "answers" if flipped["kind"] == "answers" else "rows"
    bound = round(flipped["positive_share"] + gate.max_net_negative_flips, 6)
    what = "right -> wrong" if flipped["kind"] == "answers" else f"|error| grew > {flipped['margin']:.4g}"
    checks = [
        Check(
            "diff.negative_flips",
            flipped["negative_share"],
            bound,
            flipped["negative_share"] <= bound,
            f"({flipped['negative']} of {rows} {noun} {what}, {flipped['positive']} the other way: "
            f"positive flips {flipped['positive_share']} + {gate.max_net_negative_flips} allowed)",
        )
    ]
    judged = {k: c for k, c in flipped.get("per_class", {}).items() if c["rows"] >= MIN_CLASS_ROWS}
    if judged:
        net = {k: (c["negative"] - c["positive"]) / c["rows"] for k, c in judged.items()}
        worst = max(net, key=lambda k: (net[k], k))
        c = judged[worst]
        checks.append(
            Check(
                "diff.class_regression",
                round(net[worst], 6),
                gate.max_class_regression,
                net[worst] <= gate.max_class_regression,
                f"(class {worst!r}, the worst: {c['negative']} of its {c['rows']} rows right -> wrong, "
                f"{c['positive']} wrong -> right)",
            )
        )
    return [_overridable(check, gate.override_diff) for check in checks]


def baseline_checks(metrics: dict[str, float], wanted: tuple[str, ...]) -> list[Check]:
    """The model against the trivial one on the same rows (pure): strictly better on each `wanted` metric
    that both have (metrics.json's `<metric>` and `baseline.<metric>`)."""
    from mlpipe.pipeline.evaluate import BASELINE

    checks = []
    for name in wanted:
        if name not in metrics or f"{BASELINE}{name}" not in metrics:
            continue  # a run recorded before mlpipe measured baselines
        value, base = float(metrics[name]), float(metrics[f"{BASELINE}{name}"])
        better = value < base if lower_is_better(name) else value > base
        way = "below" if lower_is_better(name) else "above"
        detail = f"(the trivial model's; {way})"
        checks.append(Check(f"baseline.{name}", round(value, 6), round(base, 6), better, detail))
    return checks


def kept_decision(champion: str | None) -> str:
    """The decision when a challenger fails: the champion stays, or, without one, nothing is served yet."""
    return "kept champion" if champion is not None else "not promoted (no champion yet: nothing is served)"


def gate_verdict(checks: list[Check]) -> tuple[bool, list[str]]:
    """(every criterion passed, the failed criteria's names)."""
    failed = [c.criterion for c in checks if not c.passed]
    return not failed, failed


def move_decision(name: str, version: str, judged_against: str | None, now: str | None) -> tuple[bool, str]:
    """(move `champion` to `version`, the decision) for a challenger that passed against champion
    `judged_against`, `now` being the champion read under the registry lock at the moment of the move
    (pure). A champion that moved meanwhile (a rollback or promotion by hand) is kept: the gate never
    replaces a version it did not judge against, nor overrides a person's move seconds later."""
    if now == judged_against:
        return True, "promoted"
    return False, (
        f"kept champion: the champion moved from {judged_against or 'none'} to {now or 'none'} while "
        f"version {version} was judged (rule: a promotion replaces only the champion it was judged "
        f"against); to promote it anyway: `mlpipe promote models:/{name}/{version} --reason ...`"
    )


# ---- the registry (I/O) ---------------------------------------------------------------------------


GATE_TABLE_ARTIFACT = "gate/checks.json"  # the gate's criteria as a table (MLflow's table artifact)
GATE_NOTE_END = "\n\n---\n\n"  # between the gate's section of a run description and the run's own


def version_headline(decision: str, checks: list[Check]) -> str:
    """The first line of a version's description, plain text: `Gate: promoted (every check passed)` or
    `Gate: kept champion (failed: metric.roc_auc, baseline.log_loss)`."""
    failed = [c.criterion for c in checks if not c.passed]
    return f"Gate: {decision} ({'failed: ' + ', '.join(failed) if failed else 'every check passed'})"


def _cell(value: object) -> str:
    return str(value).replace("|", "\\|").replace("\n", " ")


def gate_note(decision: str, version: str, checks: list[Check]) -> str:
    """The gate's section of the run description (Markdown, pure): the decision in bold; the failed
    criteria in numbers on the next line (the UI's collapsed description shows the first lines only); every
    criterion's value, bound and verdict as a table, the failed first (read on the run page without
    hovering a tag); then, for each failed one, how to accept it anyway."""
    failed = [c for c in checks if not c.passed]
    lines = [
        f"**{version_headline(decision, checks)}** (version {version})",
        *([f"Failed: {failed_brief(checks_as_dicts(failed))}"] if failed else []),
        "",
        "| criterion | value | bound | verdict |",
        "|---|---|---|---|",
        *(
            f"| {_cell(c.criterion)} | {_cell(c.value)} | {_cell(c.bound)} | "
            f"{'pass' if c.passed else '**FAIL**'} {_cell(c.detail)} |"
            for c in [*failed, *(c for c in checks if c.passed)]
        ),
    ]
    if failed:
        lines += ["", *(f"- {line}" for line in failed_lines(checks_as_dicts(failed)))]
    return "\n".join(lines)


def with_gate_note(note: str, gate: str) -> str:
    """The run description opening with the gate's section `gate`, replacing one written before (a manual
    promotion after the run's gate) (pure)."""
    if note.startswith("**Gate: ") and GATE_NOTE_END in note:
        note = note.split(GATE_NOTE_END, 1)[1]
    return f"{gate}{GATE_NOTE_END}{note}".rstrip()


def gate_table(checks: list[Check]) -> dict[str, list]:
    """The criteria as MLflow's table artifact, column by column (pure)."""
    return {
        "criterion": [c.criterion for c in checks],
        "value": [str(c.value) for c in checks],
        "bound": [str(c.bound) for c in checks],
        "verdict": ["pass" if c.passed else "FAIL" for c in checks],
        "detail": [c.detail for c in checks],
    }


def record_decision(client, name: str, version: str, run_id: str, checks: list[Check], decision: str) -> None:
    """Every criterion on the challenger's run (the description's table, a table artifact, tags) and model
    version (tags). Values and bounds are no metrics: a bound is a setting, not a measurement."""
    for c in checks:
        client.set_tag(run_id, tag.gate_tag(c.criterion), c.line()[:5000])
    if checks:
        client.log_table(run_id, gate_table(checks), GATE_TABLE_ARTIFACT)
    failed = ",".join(c.criterion for c in checks if not c.passed)
    tags = client.get_run(run_id).data.tags
    note = with_gate_note(tags.get(tag.MLFLOW_NOTE, ""), gate_note(decision, version, checks))
    # one description, opening with the decision, on the run, its registered version and its logged model
    client.set_tag(run_id, tag.MLFLOW_NOTE, note)
    # the registry's versions table shows a description's first line as text: a plain sentence first
    # (its bold copy, the note's first line, left out)
    table_on = note.split("\n", 1)[1].lstrip()
    client.update_model_version(
        name, version, description=f"{version_headline(decision, checks)}\n\n{table_on}"
    )
    if (model_uri := tag.read(tags, tag.MODEL_URI, "")).startswith("models:/m-"):
        client.set_logged_model_tags(model_uri.removeprefix("models:/"), {tag.MLFLOW_NOTE: note})
    for key, value in ((tag.GATE_DECISION, decision), (tag.GATE_FAILED, failed)):
        client.set_tag(run_id, key, value)
        client.set_model_version_tag(name, version, key, value)


def promote_unless_moved(
    root: Path, client, name: str, version: str, judged_against: str | None
) -> tuple[str, str | None]:
    """Under the registry lock: champion -> `version` when it still names `judged_against` (move_decision).
    Returns (the decision, the version replaced or None)."""
    with registry_lock(root, name, f"a run's gate promoting version {version}"):
        move, decision = move_decision(name, version, judged_against, alias_version(client, name, CHAMPION))
        return decision, move_champion(client, name, version) if move else None


# ---- the gate ---------------------------------------------------------------------------------------


def champion_comparison(
    params: Params, paths: ProjectPaths, chall: LoadedModel, champ: LoadedModel
) -> tuple[list[Check], dict]:
    """(b) and (c): the loaded challenger and champion on the current test split."""
    from mlpipe.data.frames import read_frame

    return compare_on_rows(params, read_frame(paths.test_split), champ.model, chall.model)


def compare_on_rows(params: Params, test, champion, challenger) -> tuple[list[Check], dict]:
    """(b) and (c) for two fitted models on the labelled rows `test` (a frame with their features and the
    target): the metric checks and the differential test, and the figures behind them."""
    from mlpipe.model.outputs import classes_of
    from mlpipe.pipeline.evaluate import metrics_for
    from mlpipe.release.diff import compare_models, model_outputs

    y = test[params.dataset.target].to_numpy()
    threshold = params.evaluate.threshold
    a, task_a = model_outputs(champion, test[list(champion.feature_names_in_)])
    b, task_b = model_outputs(challenger, test[list(challenger.feature_names_in_)])
    classes = classes_of(challenger)
    if (task_a, classes_of(champion)) != (task_b, classes):
        same = Check(
            "same_task",
            f"{task_b} {classes}",
            f"{task_a} {classes_of(champion)}",
            False,
            "(the champion answers another task or classes: compare by hand, then `mlpipe promote`)",
        )
        return [same], {"rows": len(test)}
    m_champ = metrics_for(params.task, y, a, threshold, classes)
    m_chall = metrics_for(params.task, y, b, threshold, classes)
    frame = test[list(challenger.feature_names_in_)].reset_index(drop=True)
    report = compare_models(a, b, task_b, y, threshold, frame, 5, classes, params.gate.row_error_tolerance)
    checks = metric_checks(m_chall, m_champ, params.tolerance) + flip_checks(report["flips"], params.gate)
    if params.gate.max_changed_share is not None and "changed_share" in report:
        checks.append(
            diff_check(report["changed_share"], params.gate.max_changed_share, params.gate.override_diff)
        )
    return checks, {
        "champion_metrics_same_rows": m_champ,
        "challenger_metrics": m_chall,
        "changed_predictions": report.get("changed_predictions"),
        "changed_share": report.get("changed_share"),
        "flips": report["flips"],
        "delta_quantiles": report["delta_quantiles"],
        "rows": report["rows"],
    }


def fetch_champion(
    client,
    name: str,
    champion: str | None,
    version: str,
    dest: Path,
    project_trusted: list[str] | tuple[str, ...] = (),
) -> tuple[LoadedModel | None, str | None]:
    """(the champion loaded through the safe loader, its files under `dest`; None) when there is one other
    than `version`; (None, why it was refused) when it fails its checks; (None, None) without one."""
    from mlpipe.registry.models import load_registered

    if champion is None or champion == version:
        return None, None
    try:
        loaded, _ = load_registered(
            client, f"models:/{name}/{champion}", dest=dest, project_trusted=project_trusted
        )
    except ModelRefused as exc:
        event("champion_unloadable", level=40, model=name, champion=champion, error=str(exc)[:300])
        return None, str(exc)
    return loaded, None


def reference_of(champ: LoadedModel | None) -> tuple[Path, str] | None:
    """The champion as the infra probe's reference: (its model dir, its verified sha256)."""
    return (champ.path.parent, champ.sha256) if champ is not None else None


def unloadable_champion(champion: str, refusal: str) -> tuple[list[Check], dict]:
    """An unloadable champion is an incident, not a wall: the challenger is judged alone, and it is said."""
    check = Check(
        "champion.loadable",
        f"version {champion} refused: {refusal[:300]}",
        "loads and verifies",
        True,
        "(ALERT: the champion fails its checks; the challenger is judged without it)",
    )
    return [check], {"champion_unloadable": refusal}


def early_infra_check(
    paths: ProjectPaths, params: Params, tracking_uri: str, champion: str | None, model_sha256: str
) -> dict:
    """The gate's infra check of the workspace model (the bytes the run trained, `model_sha256`, which the
    probe verifies), with champion version `champion` measured beside it when it loads, run before the
    model is registered so that it overlaps the MLflow logging. run_gate uses its checks and figures only
    when the registered copy holds these bytes and it would measure beside the same champion; otherwise it
    probes again. Returns {"sha256", "champion" (the version measured beside it, or None), "checks",
    "figures"}."""
    from mlpipe.registry.models import load_registered

    client = mlflow_client(tracking_uri)
    with tempfile.TemporaryDirectory(prefix="mlpipe-probe-") as tmp:
        champ = None
        if champion is not None:
            try:
                champ, _ = load_registered(
                    client,
                    f"models:/{params.model.name}/{champion}",
                    dest=Path(tmp),
                    project_trusted=params.train.trusted_types,
                )
            except ModelRefused:  # the gate says so (fetch_champion) and probes the challenger alone
                champ = None
        checks, figures = infra_check(
            paths.model.parent,
            model_sha256,
            paths.test_split,
            params.deploy,
            reference_of(champ),
            params.train.trusted_types,
        )
    return {
        "sha256": model_sha256,
        "champion": champion if champ is not None else None,
        "checks": checks_as_dicts(checks),
        "figures": figures,
    }


def _early_checks(
    early: Callable[[], dict | None] | None, sha256: str, champion: str | None
) -> tuple[list[Check], dict] | None:
    """The early infra check's (checks, figures) when it measured these bytes beside this champion."""
    early = early() if early is not None else None
    if not early or early.get("sha256") != sha256 or early.get("champion") != champion:
        return None
    return [Check(**c) for c in early["checks"]], early["figures"]


@dataclass(frozen=True)
class GateDecision:
    """The gate's answer for one registered version: the decision line, the criteria that failed, every
    check (plain rows, as the run summary and the Prefect table show them), the champion after it, and the
    figures it measured (`details`: infra, the champion on the same rows, an unloadable champion's refusal).
    `already_decided`: the version was judged before; its decision stands and nothing was measured."""

    decision: str
    already_decided: bool = False
    failed: list[str] = field(default_factory=list)
    checks: list[dict] = field(default_factory=list)
    champion: str | None = None
    champion_before: str | None = None
    previous: str | None = None
    champion_metrics_same_rows: dict | None = None
    details: dict = field(default_factory=dict)


def run_gate(
    paths: ProjectPaths,
    params: Params,
    tracking_uri: str,
    run_id: str,
    version: str,
    model_sha256: str,
    early: Callable[[], dict | None] | None = None,
) -> GateDecision:
    """Judge registered `version` (trained in this project, run `run_id`); promote or keep; record all.
    `early`: gives early_infra_check's answer for this run (waiting for it), used instead of probing again
    when it measured the same bytes beside the same champion."""
    client = mlflow_client(tracking_uri)
    name = params.model.name
    done = client.get_model_version(name, version).tags.get(tag.GATE_DECISION)
    if done:
        return GateDecision(done, already_decided=True, champion=alias_version(client, name, CHAMPION))
    # (a) the validate stage stops the flow on any violation, so a registered model's data passed it
    checks = [Check("data_validation", "passed", "no rule broken", True)]
    record = record_check(client.get_run(run_id).data.tags)
    if not record.passed:  # an unreproducible record is refused before anything is measured
        kept = kept_decision(alias_version(client, name, CHAMPION))
        record_decision(client, name, version, run_id, [*checks, record], kept)
        event("gate", model=name, version=version, decision=kept, failed=record.criterion)
        return GateDecision(
            kept,
            failed=[record.criterion],
            checks=checks_as_dicts([*checks, record]),
            champion=alias_version(client, name, CHAMPION),
        )
    checks.append(record)
    checks += baseline_checks(client.get_run(run_id).data.metrics, params.baseline_metrics)
    champion = alias_version(client, name, CHAMPION)
    from mlpipe.registry.models import load_registered

    with tempfile.TemporaryDirectory(prefix="mlpipe-gate-") as tmp:
        for part in ("challenger", "champion"):
            (Path(tmp) / part).mkdir()
        # the registered version's own copy (the one the service will load), verified against the record
        trusted = params.train.trusted_types
        chall, _ = load_registered(
            client, f"models:/{name}/{version}", dest=Path(tmp) / "challenger", project_trusted=trusted
        )
        if chall.sha256 != model_sha256:
            raise ModelRefused(
                f"gate: version {version} holds sha256 {chall.sha256}, the run trained {model_sha256}"
            )
        champ, refusal = fetch_champion(client, name, champion, version, Path(tmp) / "champion", trusted)
        # The champion is measured in the same probe, in turn with the challenger: its figures say how
        # loaded the machine was while the challenger was judged.
        found = _early_checks(early, chall.sha256, champion if champ is not None else None)
        if found is not None:  # the same bytes, beside the same champion, measured while the run was logged
            infra, figures = found
            event("gate_probe", model=name, version=version, measured="before registration")
        else:
            infra, figures = infra_check(
                chall.path.parent, chall.sha256, paths.test_split, params.deploy, reference_of(champ), trusted
            )
    checks += infra
    extra: dict = {"infra": figures}
    if champ is not None:
        more, details = champion_comparison(params, paths, chall, champ)
        checks += more
        extra |= details
    elif refusal is not None:
        more, details = unloadable_champion(champion, refusal)
        checks += more
        extra |= details
    promote, failed = gate_verdict(checks)
    decision, replaced = kept_decision(champion), None
    if promote:  # only while `champion` still names the version judged against
        # the record first: the service never sees `champion` on a version whose record is not there yet
        write_judged(client, signing_key_for_writing(paths.root), name, version, chall.sha256, PASSED)
        decision, replaced = promote_unless_moved(paths.root, client, name, version, champion)
    record_decision(client, name, version, run_id, checks, decision)
    for metric, value in extra.get("champion_metrics_same_rows", {}).items():
        if not isinstance(value, int | float):
            continue
        # the champion on this run's own test rows: what "better than the champion" means, in MLflow too
        client.log_metric(run_id, f"champion_same_rows.{metric}", float(value))
    event(
        "gate",
        model=name,
        version=version,
        decision=decision,
        failed=",".join(failed) or "none",
        champion_before=champion,
    )
    return GateDecision(
        decision,
        failed=failed,
        checks=checks_as_dicts(checks),
        champion=alias_version(client, name, CHAMPION),
        champion_before=champion,
        previous=replaced or alias_version(client, name, PREVIOUS),
        champion_metrics_same_rows=extra.get("champion_metrics_same_rows"),
        details=extra,
    )


def manual_promote(
    paths: ProjectPaths,
    params: Params,
    tracking_uri: str,
    ref: str,
    reason: str,
    wait_s: float = REGISTRY_WAIT_S,
) -> dict:
    """`mlpipe promote REF --reason`: the infra check still runs, with the current champion (when it loads)
    measured beside the target; the reason and who are recorded. The move waits up to `wait_s` for one in
    progress; the champion it replaces is read under the registry lock (a person's explicit choice of
    version holds whichever champion the infra check measured beside it)."""
    from mlpipe.registry.models import load_registered

    if not reason.strip():
        raise PromotionRefused("promote: --reason is required (rule: every manual promotion says why)")
    client = mlflow_client(tracking_uri)
    name = params.model.name
    m = MODEL_REF.match(ref)
    run_id = resolve_run(client, ref).run_id
    version = m["version"] if m and m["version"] else None
    if version is None:
        found = versions_of_run(client, run_id, name)
        if not found:
            raise PromotionRefused(f"promote: run {run_id} has no registered version of {name}")
        version = str(found[0].version)
    with (
        tempfile.TemporaryDirectory(prefix="mlpipe-promote-") as tmp,
        tempfile.TemporaryDirectory(prefix="mlpipe-promote-champion-") as champion_tmp,
    ):
        trusted = params.train.trusted_types
        loaded, _ = load_registered(
            client, f"models:/{name}/{version}", dest=Path(tmp), project_trusted=trusted
        )
        current = alias_version(client, name, CHAMPION)
        champ, _ = fetch_champion(client, name, current, version, Path(champion_tmp), trusted)
        checks, figures = infra_check(
            loaded.path.parent, loaded.sha256, paths.test_split, params.deploy, reference_of(champ), trusted
        )
    ok, failed = gate_verdict(checks)
    if not ok:
        raise PromotionRefused(
            f"promote: version {version} fails the infra check ({', '.join(failed)}): "
            + "; ".join(c.line() for c in checks if not c.passed)
        )
    key = signing_key_for_writing(paths.root)
    with registry_lock(paths.root, name, f"`mlpipe promote` of version {version}", wait_s):
        # the record first: the service never sees `champion` on a version whose record is not there yet
        write_judged(client, key, name, version, loaded.sha256, PROMOTED)
        replaced = move_champion(client, name, version)
    decision = f"promoted manually by {getpass.getuser()}: {reason}"
    record_decision(client, name, version, run_id, checks, decision)
    event("promote", model=name, version=version, replaced=replaced, reason=reason)
    return {
        "version": version,
        "replaced": replaced,
        "decision": decision,
        "checks": checks_as_dicts(checks),
        "infra": figures,
    }
