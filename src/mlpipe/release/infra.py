"""Infra check: will this packaged model run within the target platform's budgets (`deploy` in
params.yaml)? A fast pre-check of size and expected memory right after training, then a probe in a
fresh subprocess pinned to the target's cores that loads the model through the safe loader (and the
champion, when there is one), and reports load time and peak memory of the model alone, then p50/p99
single-row latency and batch throughput of both, measured in turn over `deploy.rounds` rounds.

On a shared machine the clock measures the neighbours: identical bytes were refused at p99 126 ms
against a 100 ms budget and promoted minutes later at 13.9 ms. So latency and throughput are the model's
own time (the clock minus the time the probe waited for its core, which the target platform's dedicated
cores would not make it wait; the clock's p99 and the waiting share are recorded beside them), and they
are judged by majority: the median round is reported, the range is recorded, and a budget fails only
when the challenger breaks it in most rounds. The champion's figures from the same rounds are recorded
beside them, as information; the absolute budgets stay the criteria."""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
import zipfile
from dataclasses import asdict, dataclass
from pathlib import Path

from mlpipe.config import DeployCfg
from mlpipe.errors import ProbeFailed
from mlpipe.model.artifact import MODEL_FILE
from mlpipe.release.probe import within
from mlpipe.runtime.logs import event

MB = 1 << 20


@dataclass(frozen=True)
class Check:
    """One gate criterion: its measured value, the bound, and whether it passed."""

    criterion: str
    value: object
    bound: object
    passed: bool
    detail: str = ""

    def line(self) -> str:
        return (
            f"{self.criterion}: {'pass' if self.passed else 'FAIL'} (value {self.value}, bound {self.bound})"
            + (f" {self.detail}" if self.detail else "")
        )


def checks_as_dicts(checks: list[Check]) -> list[dict]:
    return [asdict(c) for c in checks]


def how_to_accept(criterion: str) -> str:
    """Where a person changes the rule a failed criterion applies, or accepts the model anyway (pure)."""
    rules = {
        "diff.": "set gate.override_diff to a reason",
        "metric.": f"gate.tolerance.{criterion.removeprefix('metric.')}",
        "baseline.": "gate.baseline_metrics",
        "infra.": "the deploy budgets in params.yaml",
        "record.": "commit the tree and run again",
        "same_task": "compare by hand (`mlpipe diff`)",
    }
    rule = next((v for k, v in rules.items() if criterion.startswith(k)), "params.yaml gate")
    return f"to accept anyway: {rule}, or `mlpipe promote <version> --reason ...`"


def failed_brief(checks: list[dict]) -> str:
    """The failed criteria in numbers, on one line: `metric.roc_auc 0.63 (bound 0.64); ...` (pure)."""
    return "; ".join(
        f"{c['criterion']} {c['value']} (bound {c['bound']})" for c in checks if not c.get("passed", True)
    )


def failed_lines(checks: list[dict]) -> list[str]:
    """Each failed criterion of a gate in numbers: value, bound, detail, and how to accept anyway (pure)."""
    return [
        f"{Check(**c).line()}; {how_to_accept(c['criterion'])}" for c in checks if not c.get("passed", True)
    ]


def expected_memory_mb(model_file: Path) -> float:
    """The model's unpacked payload (the arrays skops will rebuild), a floor for its memory once loaded."""
    with zipfile.ZipFile(model_file) as zf:
        return round(sum(i.file_size for i in zf.infolist()) / MB, 3)


def precheck(model_file: Path, deploy: DeployCfg) -> list[Check]:
    """Size and expected memory, without loading anything: a hopeless model fails here, early."""
    size = round(model_file.stat().st_size / MB, 3)
    memory = expected_memory_mb(model_file)
    return [
        Check("infra.model_mb", size, deploy.max_model_mb, size <= deploy.max_model_mb),
        Check(
            "infra.expected_memory_mb", memory, deploy.max_peak_memory_mb, memory <= deploy.max_peak_memory_mb
        ),
    ]


# The per-round figures and whether higher is better. Latency and throughput are the model's own time
# (the clock minus the probe's waits for its core); the clock's p99 and the share of each round spent
# waiting say how loaded the machine was.
ROUND_FIGURES = {
    "p50_latency_ms": False,
    "p99_latency_ms": False,
    "throughput_rows_s": True,
    "wall_p99_latency_ms": False,
    "wait_share": False,
}
RATIO_FIGURES = ("load_s", "p50_latency_ms", "p99_latency_ms", "throughput_rows_s")


def per_round(rounds: list[dict] | None, name: str) -> list[float] | None:
    """One figure of every round (None without rounds)."""
    return [r[name] for r in rounds] if rounds else None


def median_round(values: list[float], higher_is_better: bool) -> float:
    """The median round's value; of an even number of rounds, the middle one on the better side, so the
    value keeps a budget exactly when most rounds do not break it (pure)."""
    return sorted(values, reverse=higher_is_better)[(len(values) - 1) // 2]


def ratio(value: float, reference: float) -> float | None:
    """value / reference, or None without a reference to divide by."""
    return round(value / reference, 3) if reference else None


def champion_note(value: float, reference: float) -> str:
    """The champion's figure from the same probe beside the challenger's, as information."""
    return f"champion {reference}, ratio {ratio(value, reference)}"


def contention_note(rounds: list[dict]) -> str:
    """How loaded the machine was while the model was measured: the median round's share of time spent
    waiting for the probe's core, and the clock's p99 (pure)."""
    wait = median_round(per_round(rounds, "wait_share"), False)
    wall = median_round(per_round(rounds, "wall_p99_latency_ms"), False)
    return f"own time; waited for its core {round(100 * wait, 1)}% of a round, clock p99 {wall}"


def round_check(
    criterion: str,
    values: list[float],
    bound: float,
    higher_is_better: bool,
    reference: list[float] | None,
    note: str = "",
    planned: int | None = None,
) -> Check:
    """A budget on per-round figures: failed only when the challenger breaks it in most rounds. The value is
    the median round's; the detail names the range, how many rounds broke the budget, the `note` and, given
    the champion's rounds, its median and the ratio challenger/champion. When the probe stopped before the
    `planned` rounds, the verdict on these is the one the planned rounds would have given (pure)."""
    value = median_round(values, higher_is_better)
    broke = sum(not within(v, bound, higher_is_better) for v in values)
    stopped = f", the majority of {planned} decided" if planned and planned > len(values) else ""
    parts = ["at least"] if higher_is_better else []
    parts += [
        f"median of {len(values)} rounds{stopped}",
        f"range {min(values)}..{max(values)}",
        f"{'under' if higher_is_better else 'over'} the budget in {broke} of {len(values)}",
        *([note] if note else []),
    ]
    if reference:
        parts.append(champion_note(value, median_round(reference, higher_is_better)))
    return Check(criterion, value, bound, broke * 2 <= len(values), f"({'; '.join(parts)})")


def budget_checks(figures: dict, deploy: DeployCfg) -> list[Check]:
    """The probe's figures against the budgets (pure). Load time and peak memory are one measurement each;
    latency and throughput are judged on `figures["rounds"]` by majority (round_check), with the
    champion's rounds (`figures["champion"]["rounds"]`, when measured) named beside them."""
    reference = figures.get("champion", {})
    rounds, champion_rounds = figures["rounds"], reference.get("rounds")
    load_note = (
        f"({champion_note(figures['load_s'], reference['load_s'])}, loaded second)" if champion_rounds else ""
    )
    return [
        Check(
            "infra.load_s",
            figures["load_s"],
            deploy.max_load_s,
            figures["load_s"] <= deploy.max_load_s,
            load_note,
        ),
        Check(
            "infra.peak_memory_mb",
            figures["peak_memory_mb"],
            deploy.max_peak_memory_mb,
            figures["peak_memory_mb"] <= deploy.max_peak_memory_mb,
            "(the challenger alone, before any other model is loaded)",
        ),
        round_check(
            "infra.p99_latency_ms",
            per_round(rounds, "p99_latency_ms"),
            deploy.max_p99_latency_ms,
            ROUND_FIGURES["p99_latency_ms"],
            per_round(champion_rounds, "p99_latency_ms"),
            contention_note(rounds),
            figures.get("rounds_planned"),
        ),
        round_check(
            "infra.throughput_rows_s",
            per_round(rounds, "throughput_rows_s"),
            deploy.min_throughput_rows_s,
            ROUND_FIGURES["throughput_rows_s"],
            per_round(champion_rounds, "throughput_rows_s"),
            "own time",
            figures.get("rounds_planned"),
        ),
    ]


def round_summary(rounds: list[dict]) -> dict:
    """Per round figure, the median round's value, and under `spread` its [min, max] across rounds (pure)."""
    summary: dict = {"spread": {}}
    for name, higher_is_better in ROUND_FIGURES.items():
        values = per_round(rounds, name)
        summary[name] = median_round(values, higher_is_better)
        summary["spread"][name] = [min(values), max(values)]
    return summary


def summarise(raw: dict) -> dict:
    """The probe's raw figures plus each model's median round values and spread, and the challenger's
    ratios to the champion measured in the same rounds (`ratio_to_champion`, when it was) (pure)."""
    figures = {**raw, **round_summary(raw["rounds"])}
    champion = raw.get("champion", {})
    if "rounds" in champion:
        figures["champion"] = {**champion, **round_summary(champion["rounds"])}
        figures["ratio_to_champion"] = {
            name: ratio(figures[name], figures["champion"][name]) for name in RATIO_FIGURES
        }
    return figures


PROBE_SAMPLE_ROWS = 50_000  # the probe draws its requests from this head of the sample file, not all of it


def probe(
    model_dir: Path,
    expected_sha256: str,
    sample: Path,
    deploy: DeployCfg,
    reference: tuple[Path, str] | None = None,
    timeout_s: float = 600,
    project_trusted: list[str] | tuple[str, ...] = (),
) -> dict:
    """Run `python -m mlpipe.release.probe` in a fresh process limited to `deploy.cores`, with the
    reference model (model dir, sha256) measured in the same rounds when given; return its raw figures."""
    threads = str(deploy.cores)
    env = dict(os.environ, OMP_NUM_THREADS=threads, OPENBLAS_NUM_THREADS=threads, MKL_NUM_THREADS=threads)
    spec = {
        "model_dir": str(model_dir),
        "sha256": expected_sha256,
        "reference": {"model_dir": str(reference[0]), "sha256": reference[1]} if reference else None,
        "sample": str(sample),
        "trusted": list(project_trusted),  # the project's train.trusted_types: the probe loads as the service
        "cores": deploy.cores,
        "rounds": deploy.rounds,
        # the budgets judged by majority over the rounds: the probe stops once each verdict is decided
        "budgets": {
            "p99_latency_ms": [deploy.max_p99_latency_ms, ROUND_FIGURES["p99_latency_ms"]],
            "throughput_rows_s": [deploy.min_throughput_rows_s, ROUND_FIGURES["throughput_rows_s"]],
        },
        "single_row_requests": deploy.single_row_requests,
        "batch_rows": deploy.batch_rows,
        "sample_rows": max(PROBE_SAMPLE_ROWS, deploy.batch_rows),
    }
    try:
        proc = subprocess.run(
            [sys.executable, "-m", "mlpipe.release.probe", json.dumps(spec)],
            env=env,
            capture_output=True,
            text=True,
            timeout=timeout_s,
        )
    except subprocess.TimeoutExpired:
        raise ProbeFailed(
            f"infra probe of {model_dir} did not finish within {timeout_s} s "
            f"({deploy.rounds} rounds of {deploy.single_row_requests} rows and a batch of "
            f"{deploy.batch_rows}, per model)"
        ) from None
    if proc.returncode != 0:
        tail = (proc.stderr or proc.stdout).strip().splitlines()[-1:] or ["no output"]
        raise ProbeFailed(f"infra probe failed for {model_dir}: {tail[0]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def infra_check(
    model_dir: Path,
    expected_sha256: str,
    sample: Path,
    deploy: DeployCfg,
    reference: tuple[Path, str] | None = None,
    project_trusted: list[str] | tuple[str, ...] = (),
) -> tuple[list[Check], dict]:
    """Pre-check, then (only if it passes) the probe, with the reference (the champion's model dir and
    sha256) measured in the same rounds when given; (checks, summarised figures or {})."""
    checks = precheck(model_dir / MODEL_FILE, deploy)
    if not all(c.passed for c in checks):
        return checks, {}
    figures = summarise(
        probe(model_dir, expected_sha256, sample, deploy, reference, project_trusted=project_trusted)
    )
    if "error" in figures.get("champion", {}):  # judged alone, as without a champion; said once
        event("probe_reference_unmeasured", logging.WARNING, error=figures["champion"]["error"])
    return checks + budget_checks(figures, deploy), figures
