"""File kinds of data/ and the landing zone, and what counts as a batch waiting there. No pandas or Arrow
import: `mlpipe run`'s no-op answer lists the landing zone before anything heavy is loaded."""

from __future__ import annotations

from pathlib import Path

DATA_SUFFIX = ".parquet"  # every file of data/
BATCH_SUFFIXES = (DATA_SUFFIX, ".csv")  # what may be landed


def landed_batches(landing_dir: Path) -> list[Path]:
    """Batch files waiting in the landing zone, in name order (temporary files excluded)."""
    if not landing_dir.is_dir():
        return []
    return sorted(p for p in landing_dir.iterdir() if p.is_file() and p.suffix in BATCH_SUFFIXES)
