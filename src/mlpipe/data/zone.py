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


def files_not_taken_in(pattern: str, root: Path, data_dir: Path, seen_dirs: list[Path]) -> list[Path]:
    """Files a `files` source's glob matches that nothing took in: newer than every file of data/ (the
    bootstrap read the glob before it wrote them) and of a name that no file of data/ or of `seen_dirs`
    (landing, quarantine) has. Names and modification times only: nothing is read."""
    held = [p for p in data_dir.glob("*") if p.is_file()] if data_dir.is_dir() else []
    if not held:
        return []  # not bootstrapped yet: the first run reads the glob
    newest = max(p.stat().st_mtime for p in held)
    seen = {p.name.split(".")[0] for d in [data_dir, *seen_dirs] if d.is_dir() for p in d.iterdir()}
    return [f for f in glob_files(pattern, root) if f.stat().st_mtime > newest and f.stem not in seen]
