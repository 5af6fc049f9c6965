"""Infra check: will this packaged model run within the target platform's budgets (`deploy` in
params.yaml)? A fast pre-check of size and expected memory right after training, then a probe in a
fresh subprocess pinned to the target's cores that loads the model through the safe loader, predicts
single rows and a batch, and reports load time, p99 latency, throughput and peak memory."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import zipfile
from dataclasses import asdict, dataclass
from pathlib import Path

from mlpipe.config import DeployCfg
from mlpipe.errors import ProbeFailed
from mlpipe.model.artifact import MODEL_FILE

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


def budget_checks(figures: dict, deploy: DeployCfg) -> list[Check]:
    """The probe's figures against the budgets (pure)."""
    return [
        Check("infra.load_s", figures["load_s"], deploy.max_load_s, figures["load_s"] <= deploy.max_load_s),
        Check(
            "infra.peak_memory_mb",
            figures["peak_memory_mb"],
            deploy.max_peak_memory_mb,
            figures["peak_memory_mb"] <= deploy.max_peak_memory_mb,
        ),
        Check(
            "infra.p99_latency_ms",
            figures["p99_latency_ms"],
            deploy.max_p99_latency_ms,
            figures["p99_latency_ms"] <= deploy.max_p99_latency_ms,
        ),
        Check(
            "infra.throughput_rows_s",
            figures["throughput_rows_s"],
            deploy.min_throughput_rows_s,
            figures["throughput_rows_s"] >= deploy.min_throughput_rows_s,
            "(at least)",
        ),
    ]


PROBE_SAMPLE_ROWS = 50_000  # the probe draws its requests from this head of the sample file, not all of it


def probe(
    model_dir: Path, expected_sha256: str, sample: Path, deploy: DeployCfg, timeout_s: float = 300
) -> dict:
    """Run `python -m mlpipe.release.probe` in a fresh process limited to `deploy.cores`; return its
    figures."""
    threads = str(deploy.cores)
    env = dict(os.environ, OMP_NUM_THREADS=threads, OPENBLAS_NUM_THREADS=threads, MKL_NUM_THREADS=threads)
    spec = {
        "model_dir": str(model_dir),
        "sha256": expected_sha256,
        "sample": str(sample),
        "cores": deploy.cores,
        "single_row_requests": deploy.single_row_requests,
        "batch_rows": deploy.batch_rows,
        "sample_rows": max(PROBE_SAMPLE_ROWS, deploy.batch_rows),
    }
    proc = subprocess.run(
        [sys.executable, "-m", "mlpipe.release.probe", json.dumps(spec)],
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout_s,
    )
    if proc.returncode != 0:
        tail = (proc.stderr or proc.stdout).strip().splitlines()[-1:] or ["no output"]
        raise ProbeFailed(f"infra probe failed for {model_dir}: {tail[0]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def infra_check(
    model_dir: Path, expected_sha256: str, sample: Path, deploy: DeployCfg
) -> tuple[list[Check], dict]:
    """Pre-check, then (only if it passes) the probe; (checks, probe figures or {})."""
    checks = precheck(model_dir / MODEL_FILE, deploy)
    if not all(c.passed for c in checks):
        return checks, {}
    figures = probe(model_dir, expected_sha256, sample, deploy)
    return checks + budget_checks(figures, deploy), figures
