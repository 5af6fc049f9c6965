"""`python -m mlpipe.release.probe SPEC_JSON`: the infra check's measuring process. Pinned to the
target's cores, it loads the model through the safe loader, predicts single rows and one batch, and
prints one JSON line of figures. Run by mlpipe.release.infra in a fresh process, so nothing else is loaded."""

from __future__ import annotations

import json
import os
import resource
import sys
import time
from pathlib import Path


def peak_rss_mb() -> float:
    """This process's own peak RSS (MiB): VmHWM. Not ru_maxrss: Linux carries the parent's high-water
    mark into it across fork/exec, so a probe started by a flow holding 8.6 GB reported 8.6 GB."""
    status = Path("/proc/self/status")
    if status.exists():
        for line in status.read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # no /proc: the best there is


def main(argv: list[str]) -> int:
    spec = json.loads(argv[0])
    cpus = sorted(os.sched_getaffinity(0))[: spec["cores"]]
    os.sched_setaffinity(0, set(cpus))
    import numpy as np
    import skops.io  # noqa: F401  (scikit-learn and skops imported first: load_s is the model's own cost)
    from threadpoolctl import threadpool_limits

    import mlpipe.pipeline.train  # noqa: F401
    from mlpipe.data.frames import read_head
    from mlpipe.model.loading import load_model_dir
    from mlpipe.model.outputs import scores

    with threadpool_limits(spec["cores"]):
        t0 = time.perf_counter()
        loaded = load_model_dir(Path(spec["model_dir"]), spec["sha256"])
        load_s = time.perf_counter() - t0
        model = loaded.model
        # The head of the file, the model's columns only: the figures are the model's, not the data's
        # (the whole 2M-row test split of a 10M-row run put 3 GB into peak_memory_mb).
        X = read_head(Path(spec["sample"]), spec["sample_rows"], list(model.feature_names_in_))
        rows = [X.iloc[[i % len(X)]] for i in range(spec["single_row_requests"])]
        scores(model, rows[0])  # first call pays one-off costs; a service warms up the same way
        latencies = []
        for row in rows:
            t = time.perf_counter()
            scores(model, row)
            latencies.append(time.perf_counter() - t)
        batch = X.sample(n=spec["batch_rows"], replace=len(X) < spec["batch_rows"], random_state=0)
        t = time.perf_counter()
        scores(model, batch)
        batch_s = time.perf_counter() - t
    figures = {
        "cores": len(cpus),
        "load_s": round(load_s, 4),
        "p50_latency_ms": round(float(np.percentile(latencies, 50)) * 1000, 3),
        "p99_latency_ms": round(float(np.percentile(latencies, 99)) * 1000, 3),
        "throughput_rows_s": round(len(batch) / batch_s, 1),
        "peak_memory_mb": round(peak_rss_mb(), 1),
        "single_row_requests": len(rows),
        "batch_rows": len(batch),
    }
    print(json.dumps(figures))
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
