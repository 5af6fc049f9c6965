"""What a landed batch is called under data/: a readable name, decided by the names already taken, that no
other batch can take. `b2.csv` becomes `b2.parquet`; a second `b2` (`b2.parquet` landed beside it, a later
`b2.csv`, a file named like an initial one) becomes `b2-1.parquet`, then `b2-2.parquet`. A period batch
(`batch-2013-07-01`) keeps its name, so data/'s name order stays its time order; a numbered one sorts beside
its period. Standard library only: the CLI's quick paths import it."""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable, Sequence
from pathlib import Path

from mlpipe.data.zone import DATA_SUFFIX, glob_files

MAX_STEM = 100  # characters: a name stays readable, and far under any file system's limit
UNNAMED = "unnamed"  # the stem of a file whose name holds nothing readable (`..csv`)
# quarantine/initial.rows.parquet holds the initial data's rows set aside (materialise_initial_period): a
# batch named `initial` would put its own rows set aside there.
RESERVED = (f"initial{DATA_SUFFIX}",)
_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")


def safe_stem(name: str) -> str:
    """The readable part of a landed file's name: its stem in ASCII letters, digits, `.`, `_` and `-` (accents
    dropped, other characters as `-`), without leading or trailing punctuation, at most MAX_STEM long;
    UNNAMED when nothing is left."""
    stem = Path(name).stem
    ascii_stem = unicodedata.normalize("NFKD", stem).encode("ascii", "ignore").decode()
    stem = re.sub(r"\.{2,}", ".", re.sub(r"-{2,}", "-", _UNSAFE.sub("-", ascii_stem)))
    stem = stem.strip("._-")[:MAX_STEM].rstrip("._-")
    return stem or UNNAMED


def preferred_name(name: str) -> str:
    """The name a landed file gets under data/ when nobody holds it: `<safe stem>.parquet`."""
    return safe_stem(name) + DATA_SUFFIX


def free_name(stem: str, taken: set[str]) -> str:
    """`<stem>.parquet`, or `<stem>-<n>.parquet` with the smallest n whose name is not in `taken` (names
    compared case-folded: `B2.parquet` and `b2.parquet` are one file on some file systems)."""
    name, n = stem + DATA_SUFFIX, 0
    while name.casefold() in taken:
        n += 1
        name = f"{stem}-{n}{DATA_SUFFIX}"
    return name


def data_names(landed: Sequence[str], taken: Iterable[str]) -> list[str]:
    """The data/ names of landed files taken in this order, beside the names `taken` (data/'s files): each
    distinct from every taken name, from RESERVED and from the others. The same inputs give the same names."""
    held = {t.casefold() for t in (*taken, *RESERVED)}
    names = []
    for name in landed:
        chosen = free_name(safe_stem(name), held)
        held.add(chosen.casefold())
        names.append(chosen)
    return names


def named_after(data_file: str, landed: str) -> bool:
    """True when `data_file` is a name data_names can give `landed` (`<safe stem>[-n].parquet`, or that with
    `.tmp`, a write cut short): a file an interrupted run wrote for a batch still waiting."""
    pattern = rf"{re.escape(safe_stem(landed))}(-\d+)?{re.escape(DATA_SUFFIX)}(\.tmp)?"
    return re.fullmatch(pattern, data_file, flags=re.IGNORECASE) is not None


def files_not_taken_in(pattern: str, root: Path, data_dir: Path, seen_dirs: list[Path]) -> list[Path]:
    """Files a `files` source's glob matches that nothing took in: newer than every file of data/ (the
    bootstrap read the glob before it wrote them), not waiting under their own name in `seen_dirs` (landing,
    quarantine) and with no file of data/ named after them (`b2.csv` -> `b2.parquet` or `b2-1.parquet`).
    Names and modification times only: nothing is read, so a new file whose name a file of data/ could have
    been given (a later `b2.csv` beside `data/b2.parquet`) is not named."""
    held = [p for p in data_dir.glob("*") if p.is_file()] if data_dir.is_dir() else []
    if not held:
        return []  # not bootstrapped yet: the first run reads the glob
    newest = max(p.stat().st_mtime for p in held)
    waiting = [p.name for d in seen_dirs if d.is_dir() for p in d.iterdir()]
    return [
        f
        for f in glob_files(pattern, root)
        if f.stat().st_mtime > newest
        and not any(_kept_as(w, f.name) for w in waiting)
        and not any(named_after(p.name, f.name) for p in held)
    ]


def _kept_as(kept: str, landed: str) -> bool:
    """True when `kept` is `landed` waiting in landing/ or quarantine/: its own name, or `stem.N.suffix`
    (a second copy quarantined beside the first)."""
    stem, suffix = Path(landed).stem, Path(landed).suffix
    return kept == landed or re.fullmatch(rf"{re.escape(stem)}\.\d+{re.escape(suffix)}", kept) is not None
