"""Where the project's data comes from and waits, as files: data/'s and the landing zone's file kinds, the
batches waiting, a user's own source module. No pandas or Arrow import: `mlpipe run`'s no-op answer looks
here before anything heavy is loaded."""

from __future__ import annotations

import glob
import os
from pathlib import Path

DATA_SUFFIX = ".parquet"  # every file of data/
BATCH_SUFFIXES = (DATA_SUFFIX, ".csv")  # what may be landed
# A batch of the prediction log's labelled traffic (the monitor lands it): its times are when the service
# answered, so it says nothing about how far the source's own periods have come.
FEEDBACK_PREFIX = "feedback-"


def landed_batches(landing_dir: Path) -> list[Path]:
    """Batch files waiting in the landing zone, in name order (temporary files excluded)."""
    if not landing_dir.is_dir():
        return []
    return sorted(p for p in landing_dir.iterdir() if p.is_file() and p.suffix in BATCH_SUFFIXES)


def user_source_file(source: str, root: Path) -> Path | None:
    """The project file of a user's source (a DVC stage dependency), when it lives in the project."""
    module_name, sep, _ = source.partition(":")
    if not sep:
        return None
    base = root.joinpath(*module_name.split("."))
    for candidate in (base.with_suffix(".py"), base / "__init__.py"):
        if candidate.is_file():
            return candidate
    return None


def glob_files(pattern: str, root: Path) -> list[Path]:
    """The CSV/Parquet files a path or glob names (relative to the project root), in name order."""
    full = pattern if os.path.isabs(pattern) else os.path.join(glob.escape(str(root)), pattern)
    return sorted(Path(p) for p in glob.glob(full, recursive=True) if Path(p).suffix in BATCH_SUFFIXES)
