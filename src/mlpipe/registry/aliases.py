"""Registry aliases: `champion` serves, `challenger` is the newest registered version, `previous` is the
champion a promotion replaced. Moving them is all promotion and rollback do."""

from __future__ import annotations

import getpass

from mlpipe.errors import PromotionRefused
from mlpipe.registry import tags as tag
from mlpipe.runtime.logs import event

CHAMPION, CHALLENGER, PREVIOUS = "champion", "challenger", "previous"


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
    """champion -> version; the one it replaces becomes `previous`. Returns the replaced version."""
    old = alias_version(client, name, CHAMPION)
    if old == version:
        return None
    if old is not None:
        client.set_registered_model_alias(name, PREVIOUS, old)
    client.set_registered_model_alias(name, CHAMPION, version)
    return old


def rollback(client, name: str, reason: str = "") -> tuple[str, str]:
    """champion <- previous; the demoted version is tagged and `previous` cleared. Returns (from, to)."""
    prev, cur = alias_version(client, name, PREVIOUS), alias_version(client, name, CHAMPION)
    if prev is None:
        raise PromotionRefused(
            f"{name}: no `previous` alias to roll back to (rule: rollback needs a former champion)"
        )
    client.set_registered_model_alias(name, CHAMPION, prev)
    client.delete_registered_model_alias(name, PREVIOUS)
    if cur is not None:
        client.set_model_version_tag(
            name, cur, tag.ROLLED_BACK, f"by {getpass.getuser()}: {reason or 'no reason given'}"
        )
    event("rollback", model=name, demoted=cur, champion=prev)
    return cur or "", prev
