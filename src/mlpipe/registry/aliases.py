"""Registry aliases: `champion` serves, `challenger` is the newest registered version, `previous` is the
champion a promotion replaced. Moving them is all promotion and rollback do, one move at a time per model
(registry_lock)."""

from __future__ import annotations

import getpass
import os
import re
from collections.abc import Callable
from contextlib import AbstractContextManager
from pathlib import Path

from mlpipe.errors import PromotionRefused
from mlpipe.registry import tags as tag
from mlpipe.runtime.lock import held_lock
from mlpipe.runtime.logs import event

CHAMPION, CHALLENGER, PREVIOUS = "champion", "challenger", "previous"
# Every hold is one alias move, or a rollback's verification of one version (seconds): a mover waits for the
# one in progress instead of failing, and a holder still there after this long is stuck, not busy.
REGISTRY_WAIT_S = 30.0


def registry_lock_path(root: Path, name: str) -> Path:
    """The lock file of model `name`'s alias moves in the project at `root`: .mlpipe/registry-<name>.lock
    (git-ignored; one per model, so two models never wait on each other)."""
    return root / ".mlpipe" / f"registry-{re.sub(r'[^A-Za-z0-9._-]', '_', name)}.lock"


def registry_lock(
    root: Path, name: str, doing: str, wait_s: float = REGISTRY_WAIT_S
) -> AbstractContextManager[None]:
    """Hold model `name`'s registry lock while reading its aliases, verifying and moving them (promote,
    rollback, the gate's promotion); waits up to `wait_s` for a move in progress, then refuses in one line
    naming it (LockBusy). `doing` tells a waiting command what holds the lock."""
    path = registry_lock_path(root, name)
    path.parent.mkdir(parents=True, exist_ok=True)
    return held_lock(
        path,
        wait_s,
        f"pid {os.getpid()}: {doing}",
        lambda holder: (
            f"model {name}: still busy after {wait_s:g}s ({holder}); try again when it ends "
            f"(rule: one alias move at a time per model, lock {path}); nothing was changed"
        ),
    )


def alias_version(client, name: str, alias: str) -> str | None:
    """The version `alias` points at, or None when it points nowhere (or the model does not exist)."""
    from mlflow.exceptions import MlflowException

    try:
        return str(client.get_model_version_by_alias(name, alias).version)
    except MlflowException:
        return None


def aliases_of(client, name: str, version: str) -> list[str]:
    """The aliases that point at `version` of model `name`, sorted."""
    return sorted(a for a, v in client.get_registered_model(name).aliases.items() if str(v) == str(version))


def move_champion(client, name: str, version: str) -> str | None:
    """champion -> version; the one it replaces becomes `previous`. Returns the replaced version. The caller
    holds registry_lock, so the champion read here is the one replaced."""
    old = alias_version(client, name, CHAMPION)
    if old == version:
        return None
    if old is not None:
        client.set_registered_model_alias(name, PREVIOUS, old)
    client.set_registered_model_alias(name, CHAMPION, version)
    mark_champion_run(client, name, version, old)
    return old


def mark_champion_run(client, name: str, new: str, old: str | None) -> None:
    """The champion marker of the runs table (tag CHAMPION_RUN) moved with the alias: onto the run of
    version `new`, off the run of `old`. A marker only: serving and the gate read the alias itself."""
    from mlflow.exceptions import MlflowException

    try:
        if old is not None and (old_run := client.get_model_version(name, old).run_id):
            client.delete_tag(old_run, tag.CHAMPION_RUN)
    except MlflowException:  # the old run never had it (a champion moved before this marker)
        pass
    if new_run := client.get_model_version(name, new).run_id:
        client.set_tag(new_run, tag.CHAMPION_RUN, "champion")  # short: a column of the runs table


def rollback(client, name: str, reason: str, verify: Callable[[str], None]) -> tuple[str, str]:
    """champion <- previous, once `verify(previous)` passes (it raises to refuse); the demoted version is
    tagged and `previous` cleared. The caller holds registry_lock: the version verified is the one moved
    to, read once. Returns (from, to)."""
    prev, cur = alias_version(client, name, PREVIOUS), alias_version(client, name, CHAMPION)
    if prev is None:
        raise PromotionRefused(
            f"{name}: no `previous` alias to roll back to (rule: rollback needs a former champion)"
        )
    verify(prev)
    client.set_registered_model_alias(name, CHAMPION, prev)
    client.delete_registered_model_alias(name, PREVIOUS)
    mark_champion_run(client, name, prev, cur)
    if cur is not None:
        client.set_model_version_tag(
            name, cur, tag.ROLLED_BACK, f"by {getpass.getuser()}: {reason or 'no reason given'}"
        )
    event("rollback", model=name, demoted=cur, champion=prev)
    return cur or "", prev
