"""git as mlpipe uses it: the commit, whether the tree is clean, what changed, and commits of exact paths."""

from __future__ import annotations

from pathlib import Path

from mlpipe.errors import DirtyTree
from mlpipe.runtime.shell import run_tool

SHOWN_PATHS = 8  # the refusal lists this many changed paths, then a count


def git_commit(root: Path) -> str | None:
    """HEAD's commit id, or None outside a git repository or before the first commit."""
    proc = run_tool(["git", "rev-parse", "HEAD"], root, check=False)
    return proc.stdout.strip() if proc.returncode == 0 else None


def git_dirty(root: Path) -> bool:
    """True when tracked files differ from HEAD or untracked, unignored files exist."""
    proc = run_tool(["git", "status", "--porcelain"], root, check=False)
    return proc.returncode != 0 or bool(proc.stdout.strip())


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


def require_clean_tree(root: Path) -> None:
    """DirtyTree, listing what is uncommitted (changed tracked files, untracked files not ignored), or
    naming a directory outside git: only a committed tree trains a model that can be registered."""
    if git_commit(root) is None:
        raise DirtyTree(
            f"{root}: not a git repository with a commit (rule: a registered model names its commit; "
            "git init and commit, or run --experiment)"
        )
    changed = sorted(git_changed_paths(root))
    if changed:
        shown = ", ".join(changed[:SHOWN_PATHS]) + (
            f" and {len(changed) - SHOWN_PATHS} more" if len(changed) > SHOWN_PATHS else ""
        )
        raise DirtyTree(
            f"{root}: {len(changed)} uncommitted path(s): {shown} (rule: only a committed tree trains a "
            "registrable model; commit or git-ignore them, or run --experiment for an unregistered run)"
        )


def git_show_file(root: Path, path: str, rev: str = "HEAD") -> str | None:
    """The text of `path` as commit `rev` holds it, or None when it holds no such file."""
    proc = run_tool(["git", "show", f"{rev}:{path}"], root, check=False)
    return proc.stdout if proc.returncode == 0 else None


def git_last_trailers(root: Path, path: str, key: str) -> list[str]:
    """The values of trailer `key` in the message of the last commit that changed `path`, in order."""
    fmt = f"--format=%(trailers:key={key},valueonly,separator=%x0A)"
    proc = run_tool(["git", "log", "-1", fmt, "--", path], root, check=False)
    return [line.strip() for line in proc.stdout.splitlines() if line.strip()] if proc.returncode == 0 else []


def git_holds(root: Path, commit: str, path: str) -> bool:
    """True when `commit` holds a file at `path`."""
    return run_tool(["git", "cat-file", "-e", f"{commit}:{path}"], root, check=False).returncode == 0


def git_restore_paths(root: Path, paths: list[str]) -> None:
    """Put `paths` back as HEAD has them, in the index and the working tree: changed or deleted files are
    checked out, files HEAD does not hold are removed."""
    held = [p for p in paths if git_holds(root, "HEAD", p)]
    if held:
        run_tool(["git", "checkout", "HEAD", "--", *held], root)
    for path in (p for p in paths if p not in held):
        run_tool(["git", "rm", "-q", "--cached", "--ignore-unmatch", "--", path], root)
        (root / path).unlink(missing_ok=True)
