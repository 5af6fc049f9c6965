"""Model references: a run id, models:/NAME/VERSION or models:/NAME@ALIAS, and the runs behind them."""

from __future__ import annotations

import re

from mlpipe.errors import Refused

RUN_ID = re.compile(r"^[0-9a-f]{32}$")
MODEL_REF = re.compile(r"^models:/(?P<name>[^/@]+)(?:/(?P<version>\d+)|@(?P<alias>[\w-]+))$")


def resolve_run_id(client, ref: str) -> str:
    """The training run behind `ref`: a run id, models:/NAME/VERSION or models:/NAME@ALIAS."""
    from mlflow.exceptions import MlflowException

    m = MODEL_REF.match(ref)
    try:
        if m and m["version"]:
            run_id = client.get_model_version(m["name"], m["version"]).run_id
        elif m:
            run_id = client.get_model_version_by_alias(m["name"], m["alias"]).run_id
        elif RUN_ID.match(ref):
            return client.get_run(ref).info.run_id
        else:
            raise Refused(f"{ref}: not a run id (32 hex digits), models:/NAME/VERSION or models:/NAME@ALIAS")
    except MlflowException as exc:
        raise Refused(f"{ref}: not found in the tracking store ({exc.message.splitlines()[0]})") from exc
    try:  # a registry writer can register a version naming any run id: its run must be there
        return client.get_run(run_id).info.run_id
    except MlflowException as exc:
        raise Refused(
            f"{ref}: its run {run_id} is not in the tracking store "
            "(rule: only a version whose training run is recorded is loaded)"
        ) from exc


def versions_of_run(client, run_id: str, name: str | None = None) -> list:
    """The registered versions made from run `run_id` (of model `name` only, when given)."""
    where = f"run_id = '{run_id}'" if name is None else f"name = '{name}' and run_id = '{run_id}'"
    return client.search_model_versions(where)
