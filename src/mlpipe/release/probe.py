"""`python -m mlpipe.release.probe SPEC_JSON`: the infra check's measuring process. Pinned to the
target's cores, it loads the challenger through the safe loader and measures it alone (load time, peak
memory), then loads the reference model (the champion) when one is given, and measures both in turn over
`rounds` rounds: per round and model, each single row predicted once (p50/p99 latency) and one batch
(throughput), in the model's own time (the clock minus the time the probe waited for its core; the
clock's p99 is kept beside it). It prints one JSON line of raw per-round figures; mlpipe.release.infra
summarises and judges them. Run in a fresh process, so nothing else is loaded.

Given the budgets the rounds are judged on (`budgets`: figure -> [bound, higher is better]), it stops as
soon as every budget's majority verdict over the planned rounds is decided (three passing rounds of five
cannot be outvoted): the rounds left could not change the decision, only the time it takes."""

from __future__ import annotations

import json
import os
import resource
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path


def within(value: float, bound: float, higher_is_better: bool) -> bool:
    """Whether one figure keeps its budget (a minimum when higher is better, else a maximum)."""
    return value >= bound if higher_is_better else value <= bound


def majority_decided(values: list[float], planned: int, bound: float, higher_is_better: bool) -> bool:
    """Whether the verdict on `planned` rounds (failed when most break the budget, a tie passing) is already
    fixed by these first rounds, whatever the rest measure: the breaks are a majority of `planned`, or
    even if every round left broke it they would not be. The verdict on `values` alone is then the same
    (pure)."""
    broke = sum(not within(v, bound, higher_is_better) for v in values)
    return broke * 2 > planned or (broke + planned - len(values)) * 2 <= planned


def all_decided(rounds: list[dict], planned: int, budgets: dict[str, list]) -> bool:
    """Whether every budget's verdict is decided by these rounds (never without budgets) (pure)."""
    return bool(budgets) and all(
        majority_decided([r[name] for r in rounds], planned, bound, higher)
        for name, (bound, higher) in budgets.items()
    )


def peak_rss_mb() -> float:
    """This process's own peak RSS (MiB): VmHWM. Not ru_maxrss: Linux carries the parent's high-water
    mark into it across fork/exec, so a probe started by a flow holding 8.6 GB reported 8.6 GB."""
    status = Path("/proc/self/status")
    if status.exists():
        for line in status.read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # no /proc: the best there is


def probe_cpus(available: set[int], cores: int) -> set[int]:
    """The cores the probe pins itself to: the lowest `cores` of those it may use (pure; a test that
    loads the probe's own core asks this too)."""
    return set(sorted(available)[:cores])


def pin_threads(cpus: set[int]) -> None:
    """Pin every thread of this process to `cpus` (threads started later inherit it)."""
    tasks = Path("/proc/self/task")
    for tid in sorted(int(t.name) for t in tasks.iterdir()) if tasks.exists() else [0]:
        try:
            os.sched_setaffinity(tid, cpus)
        except ProcessLookupError:  # a thread that ended meanwhile
            pass


def round_order(names: list[str], round_index: int) -> list[str]:
    """Who goes first in a round: the given order in even rounds, reversed in odd ones, so neither model
    always pays (or is spared) what the one before it left in caches and the allocator (pure)."""
    return list(names) if round_index % 2 == 0 else list(reversed(names))


@dataclass
class Subject:
    """One model under measurement: the model, its requests (its own columns of the same sample rows),
    and its figures so far."""

    model: object
    rows: list
    batch: object
    load_s: float
    rounds: list[dict] = field(default_factory=list)


def prepare(model_dir: Path, sha256: str, spec: dict) -> Subject:
    """Load the model through the safe loader (timed), cut its requests from the head of the sample (the
    model's columns only), and warm it up on one row and the batch, as a service warms up."""
    from mlpipe.data.frames import read_head
    from mlpipe.model.loading import load_model_dir
    from mlpipe.model.outputs import scores

    t0 = time.perf_counter()
    model = load_model_dir(model_dir, sha256, project_trusted=spec.get("trusted", [])).model
    load_s = time.perf_counter() - t0
    # The head of the file, the model's columns only: the figures are the model's, not the data's
    # (the whole 2M-row test split of a 10M-row run put 3 GB into peak_memory_mb).
    X = read_head(Path(spec["sample"]), spec["sample_rows"], list(model.feature_names_in_))
    rows = [X.iloc[[i % len(X)]] for i in range(spec["single_row_requests"])]
    batch = X.sample(n=spec["batch_rows"], replace=len(X) < spec["batch_rows"], random_state=0)
    scores(model, rows[0])  # first call pays one-off costs
    scores(model, batch)
    return Subject(model, rows, batch, load_s)


def run_delay_reader() -> Callable[[], float]:
    """A reader of the seconds the calling thread has so far waited, runnable, for a core (the kernel's
    schedstat run_delay); one that always says 0.0 where the kernel keeps no such count. The thread that
    predicts only: exact for a single-threaded predict (`deploy.cores` 1); with more cores, waits of the
    libraries' worker threads stay in the figures. Time the host takes from a virtual machine (steal)
    is not a wait the guest kernel sees, and stays in too."""
    try:
        fd = os.open("/proc/thread-self/schedstat", os.O_RDONLY)
    except OSError:
        return lambda: 0.0
    return lambda: int(os.pread(fd, 128, 0).split()[1]) / 1e9


def timed_call(call: Callable[[], object], waited: Callable[[], float]) -> tuple[float, float]:
    """(wall seconds, own seconds) of one call; own = wall minus the time the thread waited for its core
    meanwhile, read inside the wall interval so that only waits within it are taken off."""
    t = time.perf_counter()
    w0 = waited()
    call()
    w1 = waited()
    wall = time.perf_counter() - t
    return wall, max(wall - (w1 - w0), 1e-9)  # two clocks: never below zero


def measure_round(subject: Subject, waited: Callable[[], float]) -> dict:
    """One round of one model: each single row predicted once, then the batch. Latency and throughput are
    the model's own time: on a shared machine another process on the probe's core made identical bytes
    9x slower by the clock; the target platform gives the model its cores. The clock's p99 and the share
    of the round spent waiting for the core are kept beside them."""
    import numpy as np

    from mlpipe.model.outputs import scores

    times = [timed_call(lambda row=row: scores(subject.model, row), waited) for row in subject.rows]
    wall, own = np.array(times).T
    batch_wall, batch_own = timed_call(lambda: scores(subject.model, subject.batch), waited)
    return {
        "p50_latency_ms": round(float(np.percentile(own, 50)) * 1000, 3),
        "p99_latency_ms": round(float(np.percentile(own, 99)) * 1000, 3),
        "throughput_rows_s": round(len(subject.batch) / batch_own, 1),
        "wall_p99_latency_ms": round(float(np.percentile(wall, 99)) * 1000, 3),
        "wait_share": round(1 - (own.sum() + batch_own) / (wall.sum() + batch_wall), 3),
    }


def main(argv: list[str]) -> int:
    spec = json.loads(argv[0])
    cpus = probe_cpus(os.sched_getaffinity(0), spec["cores"])
    # Imported before pinning (seconds of it: the import need not queue behind whatever else shares the
    # probe's core), then every thread is pinned, the pools the libraries started included.
    import skops.io  # noqa: F401  (scikit-learn and skops imported first: load_s is the model's own cost)
    from threadpoolctl import threadpool_limits

    import mlpipe.pipeline.train  # noqa: F401

    pin_threads(cpus)
    with threadpool_limits(spec["cores"]):
        subjects = {"challenger": prepare(Path(spec["model_dir"]), spec["sha256"], spec)}
        # Read before anything else is loaded: the challenger's own peak (interpreter, libraries, the
        # sample head, the model, a batch prediction), what a process serving it alone would reach.
        peak_memory_mb = peak_rss_mb()
        reference_error = None
        if spec.get("reference"):
            try:
                ref = spec["reference"]
                subjects["champion"] = prepare(Path(ref["model_dir"]), ref["sha256"], spec)
            except Exception as exc:  # the reference is information: it must never stop the judgement
                reference_error = f"{type(exc).__name__}: {exc}"[:300]
        waited = run_delay_reader()
        for r in range(spec["rounds"]):
            for name in round_order(list(subjects), r):
                subjects[name].rounds.append(measure_round(subjects[name], waited))
            if all_decided(subjects["challenger"].rounds, spec["rounds"], spec.get("budgets") or {}):
                break
    challenger = subjects["challenger"]
    figures = {
        "rounds_planned": spec["rounds"],
        "cores": len(cpus),
        "single_row_requests": len(challenger.rows),
        "batch_rows": len(challenger.batch),
        "load_s": round(challenger.load_s, 4),
        "peak_memory_mb": round(peak_memory_mb, 1),
        "rounds": challenger.rounds,
    }
    if "champion" in subjects:
        champion = subjects["champion"]
        figures["champion"] = {"load_s": round(champion.load_s, 4), "rounds": champion.rounds}
    elif reference_error:
        figures["champion"] = {"error": reference_error}
    print(json.dumps(figures))
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
