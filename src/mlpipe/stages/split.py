"""Stage `split`: train/test parts of data/ (time-aware by default), recorded with the hash of each part."""

from __future__ import annotations

from mlpipe.config import Params, ProjectPaths
from mlpipe.data import read_data_dir, sha256_file, split_by_time, split_random, write_frame
from mlpipe.lineage import dvc_file_md5
from mlpipe.logs import event
from mlpipe.stages import run_stage, write_json

SPLIT_SEED_OFFSET = 1  # seed + k per step: the split draws from its own stream


def split_data(params: Params, paths: ProjectPaths) -> None:
    df = read_data_dir(paths.data)
    time_col = params.dataset.time_column
    cutoff = None
    if params.split.method == "time":
        train, test, cutoff = split_by_time(df, time_col, params.split.test_fraction)
    else:
        train, test = split_random(df, params.split.test_fraction, params.seed + SPLIT_SEED_OFFSET)
    if train.empty or test.empty:
        raise ValueError(f"split: train has {len(train)} rows, test {len(test)} (rule: both parts non-empty)")
    write_frame(train, paths.train_split)
    write_frame(test, paths.test_split)
    record = {
        "method": params.split.method,
        "seed": params.seed + SPLIT_SEED_OFFSET,
        "test_fraction": params.split.test_fraction,
        "cutoff": str(cutoff) if cutoff is not None else None,
        "data_md5": dvc_file_md5(paths.root / "data.dvc"),
        "parts": {
            name: {
                "path": str(path.relative_to(paths.root)),
                "sha256": sha256_file(path),
                "rows": len(part),
                "target_rate": round(float(part[params.dataset.target].mean()), 6),
                "time_min": str(part[time_col].min()),
                "time_max": str(part[time_col].max()),
            }
            for name, path, part in (("train", paths.train_split, train), ("test", paths.test_split, test))
        },
    }
    write_json(paths.split_record, record)
    event("split", method=params.split.method, cutoff=cutoff, train_rows=len(train), test_rows=len(test))


def main() -> int:
    return run_stage("split", split_data)


if __name__ == "__main__":
    raise SystemExit(main())
