"""Where a model came from: git commit, DVC data hash, stage output hashes, locked package versions."""

from __future__ import annotations

import tomllib
from pathlib import Path

import yaml

from mlpipe.shell import run_tool


def git_commit(root: Path) -> str | None:
    """HEAD's commit id, or None outside a git repository or before the first commit."""
    proc = run_tool(["git", "rev-parse", "HEAD"], root, check=False)
    return proc.stdout.strip() if proc.returncode == 0 else None


def git_dirty(root: Path) -> bool:
    """True when tracked files differ from HEAD or untracked, unignored files exist."""
    proc = run_tool(["git", "status", "--porcelain"], root, check=False)
    return proc.returncode != 0 or bool(proc.stdout.strip())


def dvc_file_md5(dvc_file: Path) -> str | None:
    """The md5 DVC recorded for the (single) output of a .dvc file, e.g. "3f...e1.dir"."""
    if not dvc_file.exists():
        return None
    doc = yaml.safe_load(dvc_file.read_text())
    return doc["outs"][0]["md5"]


def stage_output_hashes(lock_file: Path) -> dict[str, dict[str, str]]:
    """{stage: {output path: md5}} from dvc.lock."""
    if not lock_file.exists():
        return {}
    doc = yaml.safe_load(lock_file.read_text()) or {}
    return {
        stage: {out["path"]: out.get("md5", "") for out in body.get("outs", [])}
        for stage, body in doc.get("stages", {}).items()
    }


def locked_versions(lock_file: Path, names: list[str]) -> dict[str, str]:
    """Exact versions of `names` pinned in uv.lock (the lock, not whatever happens to be installed)."""
    doc = tomllib.loads(lock_file.read_text())
    pinned = {pkg["name"]: pkg["version"] for pkg in doc.get("package", []) if "version" in pkg}
    missing = [n for n in names if n not in pinned]
    if missing:
        raise KeyError(f"{lock_file}: {missing} not pinned (rule: every model requirement comes from the lock)")
    return {n: pinned[n] for n in names}


def git_changed_paths(root: Path) -> set[str]:
    """Paths with uncommitted changes (tracked or untracked, not ignored)."""
    proc = run_tool(["git", "status", "--porcelain", "--untracked-files=all"], root)
    return {line[3:].strip().strip('"') for line in proc.stdout.splitlines() if line.strip()}


def git_commit_paths(root: Path, paths: list[str], message: str) -> str | None:
    """Commit exactly `paths` (other staged or unstaged changes stay as they are); return the new
    commit id, or None when those paths had nothing to commit."""
    present = [p for p in paths if (root / p).exists()]
    run_tool(["git", "add", "--", *present], root)
    if not run_tool(["git", "diff", "--cached", "--quiet", "--", *present], root, check=False).returncode:
        return None
    ident = []
    for key, default in (("user.name", "mlpipe"), ("user.email", "mlpipe@localhost")):
        if run_tool(["git", "config", key], root, check=False).returncode != 0:
            ident += ["-c", f"{key}={default}"]  # a machine without a git identity still gets commits
    run_tool(["git", *ident, "commit", "-q", "-m", message, "--", *present], root)
    return git_commit(root)
