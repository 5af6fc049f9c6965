"""Model references: a run id, models:/NAME/VERSION or models:/NAME@ALIAS, and the runs behind them."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from mlpipe.errors import Refused

RUN_ID = re.compile(r"^[0-9a-f]{32}$")
MODEL_REF = re.compile(r"^models:/(?P<name>[^/@]+)(?:/(?P<version>\d+)|@(?P<alias>[\w-]+))$")


@dataclass(frozen=True)
class Resolved:
    """What a reference names, as read once: its training run (tags, metrics, params) and, for a models:/
    reference, the logged model its version names (`source`; None for a run id). A load reads the run here
    and nowhere else: the store was asked for it twice per load (to prove it exists, then for its tags)."""

    run: Any  # mlflow.entities.Run
    source: str | None = None

    @property
    def run_id(self) -> str:
        return self.run.info.run_id


def resolve_run(client, ref: str) -> Resolved:
    """The training run behind `ref`: a run id, models:/NAME/VERSION or models:/NAME@ALIAS."""
    from mlflow.exceptions import MlflowException

    m = MODEL_REF.match(ref)
    try:
        if m and m["version"]:
            mv = client.get_model_version(m["name"], m["version"])
        elif m:
            mv = client.get_model_version_by_alias(m["name"], m["alias"])
        elif RUN_ID.match(ref):
            return Resolved(client.get_run(ref))
        else:
            raise Refused(f"{ref}: not a run id (32 hex digits), models:/NAME/VERSION or models:/NAME@ALIAS")
    except MlflowException as exc:
        raise Refused(f"{ref}: not found in the tracking store ({exc.message.splitlines()[0]})") from exc
    try:  # a registry writer can register a version naming any run id: its run must be there
        return Resolved(client.get_run(mv.run_id), mv.source)
    except MlflowException as exc:
        raise Refused(
            f"{ref}: its run {mv.run_id} is not in the tracking store "
            "(rule: only a version whose training run is recorded is loaded)"
        ) from exc


def versions_of_run(client, run_id: str, name: str | None = None) -> list:
    """The registered versions made from run `run_id` (of model `name` only, when given)."""
    where = f"run_id = '{run_id}'" if name is None else f"name = '{name}' and run_id = '{run_id}'"
    return client.search_model_versions(where)
