"""A reproduce killed mid-way (kill -9 skips its cleanup) leaves a git worktree; the next one removes it,
unless it was kept on purpose or its owner still runs."""

from __future__ import annotations

import subprocess
from pathlib import Path

from mlpipe.registry.reproduce.checkout import KEEP_FILE, OWNER_FILE, remove_orphan_worktrees


def _git(root: Path, *args: str) -> str:
    return subprocess.run(
        ["git", "-c", "user.email=t@t", "-c", "user.name=t", *args],
        cwd=root,
        check=True,
        capture_output=True,
        text=True,
    ).stdout


def _worktree(root: Path, tmp: Path, name: str, pid: int, keep: bool = False) -> Path:
    base = tmp / f"mlpipe-reproduce-{name}"
    base.mkdir()
    (base / OWNER_FILE).write_text(str(pid))
    if keep:
        (base / KEEP_FILE).touch()
    _git(root, "worktree", "add", "--detach", "--quiet", str(base / "checkout"), "HEAD")
    return base


def test_only_worktrees_of_dead_owners_are_removed(tmp_path):
    root = tmp_path / "repo"
    root.mkdir()
    _git(root, "init", "-q")
    (root / "f").write_text("x")
    _git(root, "add", "f")
    _git(root, "commit", "-qm", "one")
    dead = subprocess.Popen(["true"])
    dead.wait()
    orphan = _worktree(root, tmp_path, "orphan", dead.pid)
    kept = _worktree(root, tmp_path, "kept", dead.pid, keep=True)
    live = _worktree(root, tmp_path, "live", subprocess.os.getpid())
    removed = remove_orphan_worktrees(root)
    assert removed == [orphan / "checkout"] and not orphan.exists()
    listed = _git(root, "worktree", "list")
    assert str(kept / "checkout") in listed and str(live / "checkout") in listed
    assert str(orphan) not in listed
