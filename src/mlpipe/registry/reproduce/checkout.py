"""The isolated checkout: a git worktree of the run's commit, sharing the project's DVC cache and remote, with
the recorded data (and the pinned mlpipe wheel) pulled into it; orphans of killed reproductions are
removed."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

from mlpipe.errors import Refused
from mlpipe.runtime.dvc_config import merge_local_config
from mlpipe.runtime.lockfiles import dvc_file_md5
from mlpipe.runtime.logs import event
from mlpipe.runtime.pin import VENDOR_DVC
from mlpipe.runtime.shell import pid_alive, run_tool


def commit_exists(root: Path, commit: str) -> bool:
    return run_tool(["git", "cat-file", "-e", f"{commit}^{{commit}}"], root, check=False).returncode == 0


WORKTREE_PREFIX = "mlpipe-reproduce-"


OWNER_FILE, KEEP_FILE = "owner.pid", "keep"


def remove_orphan_worktrees(root: Path) -> list[Path]:
    """Remove the reproduce worktrees of `root` whose owner process is dead (a kill -9 skips the
    cleanup); kept ones (--keep) and those of a running reproduce stay. Returns the removed ones."""
    listed = run_tool(["git", "worktree", "list", "--porcelain"], root, check=False).stdout
    removed = []
    for line in listed.splitlines():
        path = Path(line.removeprefix("worktree ")) if line.startswith("worktree ") else None
        if path is None or not path.parent.name.startswith(WORKTREE_PREFIX):
            continue
        base = path.parent
        owner = base / OWNER_FILE
        if (base / KEEP_FILE).exists() or (owner.exists() and pid_alive(int(owner.read_text() or 0))):
            continue
        run_tool(["git", "worktree", "remove", "--force", str(path)], root, check=False)
        shutil.rmtree(base, ignore_errors=True)
        removed.append(path)
    if removed:
        run_tool(["git", "worktree", "prune"], root, check=False)
        event("orphan_worktrees_removed", count=len(removed))
    return removed


@contextlib.contextmanager
def isolated_checkout(root: Path, commit: str, keep: bool = False) -> Iterator[Path]:
    """A detached git worktree of `commit` in a temporary directory; the user's tree is never touched.
    Worktrees a killed reproduce left behind (their owner process gone, not kept on purpose) are removed
    first."""
    remove_orphan_worktrees(root)
    base = Path(tempfile.mkdtemp(prefix=WORKTREE_PREFIX))
    (base / OWNER_FILE).write_text(str(os.getpid()))
    if keep:
        (base / KEEP_FILE).touch()
    wt = base / "checkout"
    run_tool(["git", "worktree", "add", "--detach", "--quiet", str(wt), commit], root)
    try:
        yield wt
    finally:
        if not keep:
            run_tool(["git", "worktree", "remove", "--force", str(wt)], root, check=False)
            shutil.rmtree(base, ignore_errors=True)
            run_tool(["git", "worktree", "prune"], root, check=False)


def share_dvc_storage(root: Path, wt: Path) -> None:
    """Point the worktree's DVC at the project's cache and remotes (as the project resolves them), merged
    into its git-ignored .dvc/config.local; the committed config stays as it was."""
    from dvc.repo import Repo

    with Repo(str(root)) as repo:
        cache_dir = Path(repo.cache.local.path).parents[1]  # <cache>/files/md5 -> <cache>
        remotes = {name: dict(cfg) for name, cfg in repo.config["remote"].items()}
    settings = {"cache": {"dir": str(cache_dir)}}
    settings.update({f'remote "{name}"': {"url": cfg["url"]} for name, cfg in remotes.items()})
    merge_local_config(wt / ".dvc", settings)  # what else it holds stays (the plots template's name)


def pull_recorded_data(wt: Path, data_md5: str) -> None:
    """`dvc pull data.dvc` in the worktree: from the shared cache, else the remote; refuse when neither
    has it."""
    found = dvc_file_md5(wt / "data.dvc")
    if found != data_md5:
        raise Refused(
            f"the commit's data.dvc names {found}, the run recorded {data_md5}: the record and the "
            "commit disagree, so this run cannot be reproduced from its commit"
        )
    proc = run_tool(["dvc", "pull", "data.dvc"], wt, check=False)
    if proc.returncode != 0:
        tail = " ".join((proc.stderr or proc.stdout).strip().splitlines()[-3:])
        raise Refused(
            f"data md5 {data_md5} is in neither the DVC cache nor the remote ({tail}). Restore the "
            "remote from a backup, or reproduce on a machine whose cache holds it"
        )


def pull_pinned_wheel(wt: Path) -> None:
    """`dvc pull vendor.dvc` in the worktree of a commit that pins mlpipe's wheel (a project made by
    `mlpipe init`): from the shared cache, else the remote; Refused naming the wheel when neither has it."""
    if not (wt / VENDOR_DVC).exists():
        return
    proc = run_tool(["dvc", "pull", VENDOR_DVC], wt, check=False)
    if proc.returncode != 0:
        tail = " ".join((proc.stderr or proc.stdout).strip().splitlines()[-3:])
        raise Refused(
            f"the commit pins mlpipe's wheel ({VENDOR_DVC}), which is in neither the DVC cache nor the "
            f"remote ({tail}): restore the remote, or reproduce where the cache holds it"
        )


def restored_file_hashes(wt: Path, data_md5: str) -> dict[str, tuple[str | None, str | None]]:
    """{relpath: (md5 the snapshot lists, md5 of the restored file's content)}, hashed afresh with DVC's
    own file hash: DVC trusts its cache on checkout, this proves the bytes the stages will read."""
    from dvc.repo import Repo
    from dvc_data.hashfile.hash import file_md5

    with Repo(str(wt)) as repo:
        listing = Path(repo.cache.local.oid_to_path(data_md5))
    entries = {e["relpath"]: e["md5"] for e in json.loads(listing.read_text())}
    data = wt / "data"
    present = {p.relative_to(data).as_posix() for p in data.rglob("*") if p.is_file()}
    return {
        rel: (entries.get(rel), file_md5(str(data / rel)) if rel in present else None)
        for rel in sorted(set(entries) | present)
    }
