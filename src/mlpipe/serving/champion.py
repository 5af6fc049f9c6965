"""Following the `champion` alias: each poll of the service's watcher loads and checks the version the alias
names when it is new, and swaps it in only when it passes; a version refused (no judged record, a changed
byte, an untrusted type) leaves the served model in place, and the watch says why until the alias names a
version that is served. A refused version is tried again only once its judged record changes (`mlpipe
promote` of it), not at every poll."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from mlpipe.registry import tags as tag
from mlpipe.runtime.logs import event


@dataclass
class ChampionWatch:
    """What the watcher knows between polls: why each (version, judged record) pair was refused, and why the
    version the alias names is not the one served (None while it is)."""

    refused: dict[tuple[str, str], str] = field(default_factory=dict)
    reason: str | None = None

    def said(self) -> dict[str, str]:
        """/ready's addition: why the champion is not the model served, when it is not."""
        return {"champion_refused": self.reason} if self.reason else {}


def alias_target(client, name: str, alias: str) -> tuple[str, str] | None:
    """(the version `alias` names, its judged record or ""), or None when it names none."""
    from mlflow.exceptions import MlflowException

    try:
        mv = client.get_model_version_by_alias(name, alias)
    except MlflowException:
        return None
    return str(mv.version), (mv.tags or {}).get(tag.JUDGED, "")


def refusal_line(alias: str, version: str, kept: str, error: str) -> str:
    """What /ready and /metrics say while `alias` names a refused version."""
    return f"{alias} names version {version}, refused; version {kept} kept: {error}"


def poll_champion(
    watch: ChampionWatch,
    client,
    name: str,
    alias: str,
    served: Any | None,
    load: Callable[[str], Any],
    swaps,
) -> Any | None:
    """One poll: the model of the version `alias` names, loaded and checked by `load(models:/NAME/VERSION)`,
    when it is not the one `served`; None when nothing changed or it was refused (counted in `swaps`, a
    Prometheus counter by outcome, and said in `watch.reason`)."""
    try:
        target = alias_target(client, name, alias)
    except Exception:  # noqa: BLE001 - a tracking hiccup: try again next poll
        return None
    if target is None:
        return None
    version = target[0]
    if served is not None and served.version == version:
        watch.reason = None  # the alias is back on the model served
        return None
    kept = served.version if served is not None else "none"
    if target in watch.refused:  # refused before (the alias may have moved away and back): said again
        watch.reason = refusal_line(alias, version, kept, watch.refused[target])
        return None
    try:
        candidate = load(f"models:/{name}/{version}")
    except Exception as exc:  # noqa: BLE001 - the reason is reported, never served
        error = watch.refused[target] = f"{type(exc).__name__}: {exc}".splitlines()[0]
        watch.reason = refusal_line(alias, version, kept, error)
        swaps.labels("refused").inc()
        event("hot_swap_refused", logging.ERROR, model=name, version=version, kept=kept, error=error)
        return None
    watch.reason = None
    swaps.labels("swapped").inc()
    event("hot_swap", model=name, version=version, previous=None if served is None else served.version)
    return candidate
