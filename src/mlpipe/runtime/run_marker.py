"""An interrupted run is completed by the next one: the files a run writes and commits itself (data.dvc,
dvc.lock, metrics.json) are the run's while it works, not a user's uncommitted changes.

Under the project lock, before it writes any of them, the retrain flow leaves a marker
(`.mlpipe/run-in-progress.json`, git-ignored) naming the commit it started from, the files it may leave
uncommitted, its pid and host; it removes the marker once those files are committed. A marker that the
next run finds while it holds the lock was left by a run that did not finish (Ctrl-C, SIGTERM, kill -9, a
failed stage). When the only uncommitted changes are files the marker names, they are put back as HEAD
has them, and the stages redo, or DVC restores from its run-cache, what the interrupted run had not
committed; on a first run interrupted before its data commit, `data/` goes too (the bootstrap makes it
again from the start, never from a part of it). Any other uncommitted change still refuses the run
(git.require_clean_tree), a user's edits included, and the marker stays until the tree holds nothing but
the run's files.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path

from mlpipe.errors import LockBusy
from mlpipe.runtime.git import git_changed_paths, git_commit, git_holds, git_restore_paths
from mlpipe.runtime.lock import project_lock
from mlpipe.runtime.logs import event
from mlpipe.runtime.shell import run_tool

MARKER = Path(".mlpipe") / "run-in-progress.json"
GIT_LOCK_STALE_S = 5.0  # a git index lock older than this, made during an interrupted run, was its own


@dataclass(frozen=True)
class RunMarker:
    """What a run that writes its own files left behind before writing them."""

    head: str
    paths: tuple[str, ...]
    pid: int
    host: str
    started: float  # unix time


def read_marker(root: Path) -> RunMarker | None:
    try:
        found = json.loads((root / MARKER).read_text())
        return RunMarker(
            str(found["head"]), tuple(found["paths"]), int(found["pid"]), str(found["host"]), found["started"]
        )
    except (OSError, ValueError, KeyError, TypeError):
        return None


def mark_run_writing(root: Path, paths: Sequence[str]) -> None:
    """Leave the marker naming HEAD and `paths`, the files this run may leave uncommitted (call under the
    project lock, before writing them). Written whole or not at all."""
    head = git_commit(root)
    if head is None:  # outside git nothing is committed: nothing to put back
        return
    marker = RunMarker(head, tuple(paths), os.getpid(), socket.gethostname(), time.time())
    dest = root / MARKER
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = dest.with_name(dest.name + ".tmp")
    tmp.write_text(json.dumps(asdict(marker)))
    tmp.replace(dest)


def clear_run_marker(root: Path) -> bool:
    """Remove the marker once none of the files it names is uncommitted; True when it is gone."""
    marker = read_marker(root)
    if marker is not None and git_changed_paths(root) & set(marker.paths):
        return False
    (root / MARKER).unlink(missing_ok=True)
    return True


def run_leftovers(marker: RunMarker, changed: set[str]) -> list[str] | None:
    """The paths to put back as HEAD has them: the uncommitted changes when every one is a file the
    interrupted run names (possibly none), else None (someone else's changes: the tree is dirty)."""
    return sorted(changed) if changed <= set(marker.paths) else None


def describe_restored(marker: RunMarker, restored: Sequence[str], head: str | None) -> str:
    when = datetime.fromtimestamp(marker.started, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    return (
        f"a run interrupted before it committed its own files (pid {marker.pid}, started {when}) left "
        f"{', '.join(restored)} uncommitted: put back as HEAD {(head or '')[:8]} has them; this run redoes "
        "its work"
    )


def restore_interrupted_run(root: Path, lock_file: Path) -> str | None:
    """Put back as HEAD has them the files an interrupted run left uncommitted (see the module's docstring),
    logging one line that says so, which it returns; None when there was nothing of the kind (no marker,
    a run holding the project lock, or changes that are not only the run's)."""
    if not (root / MARKER).exists():
        return None
    try:
        with project_lock(lock_file, timeout_s=0):
            return _restore(root)
    except LockBusy:  # a live run: the marker and the files are its own
        return None


def _restore(root: Path) -> str | None:
    marker = read_marker(root)
    if marker is None or not _git_index_free(root, marker):  # gone meanwhile; a git at work
        return None
    restored = run_leftovers(marker, git_changed_paths(root))
    if restored is None:
        return None  # the tree is dirty with more than the run's files: refused as such, marker kept
    if restored:
        git_restore_paths(root, restored)
    restored += _remove_uncommitted_dvc_outputs(root, marker)
    (root / MARKER).unlink(missing_ok=True)
    if not restored:
        return None
    line = describe_restored(marker, restored, git_commit(root))
    event("interrupted_run_restored", note=line)
    return line


def _remove_uncommitted_dvc_outputs(root: Path, marker: RunMarker) -> list[str]:
    """The directories tracked by a .dvc file of the run's that no commit holds yet (`data` of `data.dvc`
    on a first run interrupted before its data commit): the run was making them (a bootstrap killed
    mid-way may have written part of one), so they go and the next run makes them again from the start.
    Returns them, named `data/`."""
    removed = []
    for dvc_file in (p for p in marker.paths if p.endswith(".dvc")):
        tracked = root / dvc_file.removesuffix(".dvc")
        if tracked.is_dir() and not git_holds(root, "HEAD", dvc_file):
            shutil.rmtree(tracked)
            removed.append(f"{tracked.name}/")
    return removed


def _git_index_free(root: Path, marker: RunMarker) -> bool:
    """True when no git index lock stands in the way: none, or one left by a commit the interrupted run
    was making when it was killed (made since the run began, held longer than any commit takes), which is
    removed. A fresh one may be a live git's: False, and nothing is restored this time."""
    found = run_tool(["git", "rev-parse", "--git-path", "index.lock"], root, check=False).stdout.strip()
    try:
        made = (root / found).stat().st_mtime if found else None
    except OSError:
        return True
    if made is None or not marker.started <= made < time.time() - GIT_LOCK_STALE_S:
        return made is None
    (root / found).unlink(missing_ok=True)
    event("stale_git_lock_removed", path=root / found, pid=marker.pid)
    return True
