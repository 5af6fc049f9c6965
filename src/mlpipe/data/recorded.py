"""data/ as data.dvc records it. data/ changes only through batches (a run takes them in, snapshots and
commits) or on purpose (`mlpipe data accept --reason`). A file deleted, truncated, edited or added by hand
is none of these: a run restores what DVC's cache or remote holds, with DVC's own granular checkout, and
says so; what it cannot restore, and any file added by hand, it refuses in one line naming the files and
how to accept the change. No model is trained on data that shrank by accident.

Also here: the proof, before a landing file is deleted, that its rows are in the committed snapshot, and
the landing files a run interrupted after its commit left behind (found by the commit's trailers)."""

from __future__ import annotations

import logging
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import yaml

from mlpipe.config import Params, ProjectPaths
from mlpipe.data.landing import TakenBatch, resolve_quarantined
from mlpipe.data.naming import named_after
from mlpipe.data.snapshot import DATA_DVC, LANDED_TRAILER, snapshot_data
from mlpipe.data.zone import landed_batches
from mlpipe.errors import DataError, ToolError
from mlpipe.runtime.git import git_commit_paths, git_last_trailers, git_show_file
from mlpipe.runtime.hashing import sha256_file
from mlpipe.runtime.lockfiles import dvc_file_md5
from mlpipe.runtime.logs import event

INTERRUPTED_DIR = "interrupted"  # under quarantine/: files an interrupted run left in data/, moved aside
EDITED_DIR = "edited"  # under quarantine/: files of data/ edited by hand, moved aside before their restore
REASON_TRAILER = "Data-Accepted-Reason"  # in the commit of `mlpipe data accept`: why data/ changed by hand
ACCEPT_HOW = 'to keep data/ as it is on purpose: mlpipe data accept --reason "..."'


@dataclass(frozen=True)
class DataStatus:
    """How data/ differs from data.dvc, file names relative to data/ (DVC's `data status --granular`):
    `not_in_cache` names recorded files whose content the DVC cache lacks (`listing_missing`: data.dvc's
    own listing of data/)."""

    deleted: tuple[str, ...] = ()
    modified: tuple[str, ...] = ()
    added: tuple[str, ...] = ()
    not_in_cache: tuple[str, ...] = ()
    listing_missing: bool = False

    @property
    def clean(self) -> bool:
        return not (self.deleted or self.modified or self.added)

    @property
    def to_restore(self) -> tuple[str, ...]:
        return (*self.deleted, *self.modified)

    def how(self, name: str) -> str:
        """How file `name` differs from data.dvc: deleted, modified (truncated or edited) or added."""
        return "deleted" if name in self.deleted else "modified" if name in self.modified else "added"

    def describe(self) -> str:
        """The changes in one phrase: "deleted batch-2013-06-01.parquet; added notes.parquet"."""
        parts = [(what, names) for what, names in self._kinds() if names]
        return "; ".join(f"{what} {', '.join(names)}" for what, names in parts) or "no change"

    def _kinds(self) -> list[tuple[str, tuple[str, ...]]]:
        return [("deleted", self.deleted), ("modified", self.modified), ("added", self.added)]


def parse_status(doc: dict, data_dir: str = "data") -> DataStatus:
    """DataStatus from the JSON of `dvc data status --granular --json` (entries of other outputs and the
    directory itself left out)."""
    prefix = data_dir.rstrip("/") + "/"

    def names(entries) -> tuple[str, ...]:
        return tuple(sorted(e[len(prefix) :] for e in entries or [] if e.startswith(prefix) and e != prefix))

    changed = doc.get("uncommitted", {})
    return DataStatus(
        deleted=names(changed.get("deleted")),
        modified=names(changed.get("modified")),
        added=names(changed.get("added")),
        not_in_cache=names(doc.get("not_in_cache")),
        listing_missing=prefix in (doc.get("not_in_cache") or []),
    )


@contextmanager
def dvc_repo(paths: ProjectPaths, quiet: bool = False) -> Iterator:
    """DVC's Python API on the project (in this process: ~0.1 s a call once DVC is imported, against ~0.7 s
    for a `dvc` command); `quiet`: its own error lines left out (the caller says what failed)."""
    from dvc.repo import Repo

    dvc_logger = logging.getLogger("dvc")
    level = dvc_logger.level
    if quiet:
        dvc_logger.setLevel(logging.CRITICAL)
    try:
        with Repo(str(paths.root)) as repo:
            yield repo
    finally:
        dvc_logger.setLevel(level)


def data_status(paths: ProjectPaths) -> DataStatus:
    """How data/ differs from data.dvc, as DVC's `data status --granular` sees it."""
    with dvc_repo(paths) as repo:
        return parse_status(repo.data_status(granular=True), _rel(paths))


def _rel(paths: ProjectPaths) -> str:
    return paths.data.relative_to(paths.root).as_posix()


def left_by_interrupted_run(added: tuple[str, ...], waiting: list[str]) -> list[str]:
    """The added files of data/ that a run writes for a batch still waiting in the landing zone (named as
    naming.data_names names it, or its `.tmp` while written): left by a run interrupted before its commit."""
    return [f for f in added if any(named_after(f, w) for w in waiting)]


def refusal(status: DataStatus, by_hand: list[str], missing: list[str]) -> str:
    """The one line refusing data/ as it is: every file that differs and how (those `missing` in neither the
    DVC cache nor the remote said so; `by_hand`: added by hand), and what to do."""
    shown = [
        f"{name} {status.how(name)}"
        + (" and in neither the DVC cache nor the remote" if name in missing else "")
        + (" by hand" if name in by_hand else "")
        for name in [*status.to_restore, *by_hand]
    ]
    land = (
        "; land a file added by hand as a batch: move it out of data/, then mlpipe ingest FILE"
        if by_hand
        else ""
    )
    return (
        f"data/ differs from {DATA_DVC} in a way no batch explains: {', '.join(shown)} "
        f"(rule: data/ changes only through batches{land}; {ACCEPT_HOW})"
    )


def keep_as_recorded(paths: ProjectPaths, params: Params) -> list[str]:
    """Bring data/ back to what data.dvc records before a run reads it; returns one line per file put back.

    Files an interrupted run wrote for a batch still waiting go to quarantine/interrupted/ (the run takes the
    batch in again). A file deleted or modified by hand is restored by DVC's checkout of those files from the
    DVC cache, fetched first from the remote when the cache lacks it (an edited copy is moved to
    quarantine/edited/ first: nothing made by hand is deleted). A file added by hand, or one neither
    the cache nor the remote holds, refuses the run (DataError) before anything is touched. Without data.dvc
    or data/ (a first run, a fresh clone), the bootstrap does the work."""
    if not (paths.root / DATA_DVC).exists() or not paths.data.is_dir():
        return []
    status = data_status(paths)
    if status.clean:
        return []
    quarantine_dir = paths.root / params.retrain.quarantine_dir
    waiting = [p.name for p in landed_batches(paths.root / params.retrain.landing_dir)]
    leftovers = left_by_interrupted_run(status.added, waiting)
    by_hand = [f for f in status.added if f not in leftovers]
    fetched: list[str] = []
    if not by_hand and (status.listing_missing or set(status.to_restore) & set(status.not_in_cache)):
        status, fetched = fetch_missing(paths, status)
    missing = [f for f in status.to_restore if f in status.not_in_cache]
    if by_hand or missing:
        raise DataError(refusal(status, by_hand, missing))
    notes = [
        f"data/: moved {f} to {_shown(move_aside(paths.data / f, quarantine_dir / INTERRUPTED_DIR), paths)} "
        "(written by an interrupted run for a batch still waiting: taken in again)"
        for f in leftovers
    ]
    edited = {
        f: _shown(move_aside(paths.data / f, quarantine_dir / EDITED_DIR), paths) for f in status.modified
    }
    if status.to_restore:  # only now: a checkout missing an object deletes the whole of data/
        with dvc_repo(paths) as repo:
            repo.checkout(targets=[str(paths.data / f) for f in status.to_restore], force=True)
    notes += [
        f"data/: restored {f} from the DVC {'remote' if f in fetched else 'cache'} "
        f"(it differed from {DATA_DVC}: {status.how(f)}"
        + (f"; the edited copy is in {edited[f]})" if f in edited else ")")
        for f in status.to_restore
    ]
    after = data_status(paths)
    if not after.clean:
        raise ToolError(f"data/: still differs from {DATA_DVC} after the restore: {after.describe()}")
    for note in notes:
        event("data_restored", level=logging.WARNING, note=note)
    return notes


def fetch_missing(paths: ProjectPaths, status: DataStatus) -> tuple[DataStatus, list[str]]:
    """`dvc fetch` of the recorded files the cache lacks (a partial fetch is no failure here: what is still
    missing is named by the caller). Returns the status after it and the files it brought."""
    from dvc.exceptions import DvcException

    wanted = [f for f in status.to_restore if f in status.not_in_cache]
    targets = (
        [str(paths.data / f) for f in wanted] if not status.listing_missing else [str(paths.root / DATA_DVC)]
    )
    with dvc_repo(paths, quiet=True) as repo:
        try:
            repo.fetch(targets=targets)
        except DvcException:
            pass
    after = data_status(paths)
    return after, [f for f in wanted if f not in after.not_in_cache]


def move_aside(path: Path, dest_dir: Path) -> Path:
    """Move a file of data/ that data.dvc does not record into `dest_dir` (never over another file: `.N`
    added to its name), so that nothing a run did not write is deleted; returns where it went."""
    dest_dir.mkdir(parents=True, exist_ok=True)
    dest, n = dest_dir / path.name, 0
    while dest.exists():
        n += 1
        dest = dest_dir / f"{path.name}.{n}"
    shutil.move(path, dest)
    return dest


def _shown(path: Path, paths: ProjectPaths) -> str:
    return path.relative_to(paths.root).as_posix()


# ---- accepting a change on purpose -------------------------------------------------------------------


def accept_as_is(paths: ProjectPaths, reason: str) -> str:
    """Snapshot data/ as it is (`dvc add`, push) and commit data.dvc with what changed and `reason` in the
    message (subject and a `Data-Accepted-Reason:` trailer, which the next MLflow run carries as a tag);
    returns the line saying so. data/ as recorded already: nothing is committed."""
    reason = " ".join(reason.split())
    if not reason:
        raise DataError(
            'data accept: --reason is empty (rule: a change to data/ by hand says why: --reason "...")'
        )
    before = dvc_file_md5(paths.root / DATA_DVC)
    status = data_status(paths) if before and paths.data.is_dir() else None
    if status is not None and status.clean:
        return f"data/ is as {DATA_DVC} records it (md5 {before}): nothing to accept"
    what = status.describe() if status is not None else "data/ as found (nothing recorded before)"
    md5 = snapshot_data(paths)
    subject = f"data: accept {what} (reason: {reason}) (md5 {md5})"
    commit = git_commit_paths(
        paths.root, [DATA_DVC, ".gitignore"], f"{subject}\n\n{REASON_TRAILER}: {reason}"
    )
    event("data_accepted", level=logging.WARNING, changes=what, reason=reason, data_md5=md5)
    where = f"committed {commit[:8]}" if commit else "nothing to commit"
    return (
        f"accepted data/ as it is: {what}; md5 {before} -> {md5} ({where}); the next mlpipe run trains on it"
    )


# ---- the proof before a landing file is deleted ------------------------------------------------------


def committed_data_md5(root: Path, rev: str = "HEAD") -> str | None:
    """The data hash data.dvc records in commit `rev`."""
    text = git_show_file(root, DATA_DVC, rev)
    if not text:
        return None
    return (yaml.safe_load(text) or {}).get("outs", [{}])[0].get("md5")


def unproven(root: Path, taken: list[TakenBatch], md5: str) -> dict[str, str]:
    """{landing file: why its rows are not proven in the committed snapshot} over the batches `taken`: a
    batch is proven when HEAD's data.dvc records `md5`, the snapshot just made, its data file holds the rows
    taken, its rows file the rows set aside, and the two add up to the rows landed."""
    import pyarrow.parquet as pq

    def rows(path) -> int | None:
        return pq.ParquetFile(path).metadata.num_rows if path and Path(path).is_file() else None

    committed = committed_data_md5(root)
    found: dict[str, str] = {}
    for t in taken:
        held, aside = rows(t.data_file), rows(t.rows_file) if t.set_aside else 0
        if committed != md5:
            why = f"the commit's {DATA_DVC} records md5 {committed}, not the snapshot's {md5}"
        elif held != t.rows:
            found_rows = "no file" if held is None else f"{held:,} rows"
            why = f"data/{t.data_file.name} holds {found_rows}, not {t.rows:,}"
        elif aside != t.set_aside:
            why = f"{t.rows_file} holds {aside} rows set aside, not {t.set_aside:,}"
        elif t.rows + t.set_aside != t.landed_rows:
            why = f"{t.rows:,} rows taken and {t.set_aside:,} set aside, not the {t.landed_rows:,} landed"
        else:
            continue
        found[t.landed] = why
    return found


def consume_landed(paths: ProjectPaths, params: Params, taken: list[TakenBatch], md5: str) -> list[str]:
    """Delete the landing file of each batch whose rows are proven in the committed snapshot `md5`
    (unproven), and move out of quarantine/ the copies of batches of its name quarantined before (a fixed
    batch landed again); a batch not proven keeps its landing file, one line each saying why."""
    kept = unproven(paths.root, taken, md5)
    for t in taken:
        if t.landed not in kept:
            _consume(paths, params, t.landed)
    lines = [
        f"{name}: kept in {params.retrain.landing_dir}/, its rows are not proven in the committed snapshot "
        f"({why})"
        for name, why in kept.items()
    ]
    for line in lines:
        event("landing_kept", level=logging.WARNING, note=line)
    return lines


def consume_taken_before(paths: ProjectPaths, params: Params) -> list[str]:
    """Delete the landing files the last snapshot commit already took in (its `Landed-Batch:` trailers: same
    name, same bytes, the data file holding the rows): a run interrupted between its commit and deleting
    them left them, and taking them again would refuse them as rows already in data/. One line each."""
    import pyarrow.parquet as pq

    landing_dir = paths.root / params.retrain.landing_dir
    lines = []
    for entry in git_last_trailers(paths.root, DATA_DVC, LANDED_TRAILER):
        sha, data_file, rows, landed = (entry.split(" ", 3) + ["", "", "", ""])[:4]
        path, held = landing_dir / landed, paths.data / data_file
        if not (landed and path.is_file() and held.is_file() and rows.isdigit()):
            continue
        if sha256_file(path) != sha or pq.ParquetFile(held).metadata.num_rows != int(rows):
            continue  # not that batch: judged as any landed file
        _consume(paths, params, landed)
        lines.append(
            f"{params.retrain.landing_dir}/{landed}: already in data/ as {data_file} ({int(rows):,} rows, "
            "committed by a run interrupted before deleting it): deleted"
        )
    for line in lines:
        event("landing_taken_before", level=logging.WARNING, note=line)
    return lines


def _consume(paths: ProjectPaths, params: Params, landed: str) -> None:
    """Delete a landing file whose rows are in the committed snapshot, and move its quarantined namesakes
    to quarantine/resolved/."""
    (paths.root / params.retrain.landing_dir / landed).unlink(missing_ok=True)
    for moved in resolve_quarantined(landed, paths.root / params.retrain.quarantine_dir):
        event("quarantine_resolved", batch=landed, to=moved, reason="taken in under its name")
