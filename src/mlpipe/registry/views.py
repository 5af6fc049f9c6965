"""What the MLflow UI (3.17) shows of an mlpipe experiment, and the links that open it so.

- The model-training view: the UI opens every experiment in its GenAI view unless the URL asks for
  `workflowType=machine_learning` (the experiment's `mlflow.experimentKind` tag does not change that).
- The run table's columns: by default Source, Models and Dataset, no metric. The UI keeps its column
  choice in the browser (localStorage) and, for a saved view, in an experiment tag
  `mlflow.sharedViewState.<id>` whose value is {name, createdAt, updatedAt, state: JSON of the table's
  state}; a link with `viewStateShareKey=<id>` opens that view, and the "Views" menu lists it. mlpipe
  saves one such view with the task's headline metrics as columns and its links open it, beside what tells
  runs apart: the gate's decision, the champion marker, the champion's figures on each run's own test rows
  (`champion_same_rows.*`: the comparable ones, the headline metrics being each on its own test window), the
  estimator and the hyperparameters that vary between runs.
"""

from __future__ import annotations

import json
import time

from mlpipe.config import TASK_HEADLINE
from mlpipe.registry import tags as tag

MODEL_TRAINING_VIEW = "workflowType=machine_learning"
RUN_TABLE_VIEW = "mlpipe-headline"  # the saved view's id (the tag's suffix, the link's viewStateShareKey)
RUN_TABLE_VIEW_NAME = "mlpipe: headline metrics"
RUN_TABLE_VIEW_TAG = f"{tag.MLFLOW_SAVED_VIEW_PREFIX}{RUN_TABLE_VIEW}"  # the experiment tag holding it
EXPERIMENTS_PAGE = f"#/experiments?{MODEL_TRAINING_VIEW}"  # the list of experiments, model-training view
TABLE_METRICS = 3  # the first headline metrics of the task, as columns
# The UI's own default columns, kept; and the column ids it orders by (ag-grid column ids of 3.17:
# unknown ids are ignored, columns not named follow in their own order).
DEFAULT_COLUMNS = ("attributes.`Source`", "attributes.`Models`", "attributes.`Dataset`")
LEADING_COLUMNS = ("attributes.`Run Name`", "runDateAndNestInfo")


ESTIMATOR_PARAMS = ("train.estimator", "train.estimator_chosen")
HYPERPARAMS = "train.hyperparams."


def run_table_state(task: str, varying: tuple[str, ...] = ()) -> dict:
    """The run table's state in mlpipe's view (pure): right after the run's name and date, the gate's
    decision and the champion marker, the task's headline metrics, the champion's on the same rows, the
    estimator and the params in `varying` (those that differ between the experiment's runs)."""
    headline = [m for m in TASK_HEADLINE[task] if m != "n_test"][:TABLE_METRICS]
    metrics = [f"metrics.`{m}`" for m in headline]
    same_rows = [f"metrics.`champion_same_rows.{m}`" for m in headline]
    marks = [f"tags.`{tag.GATE_DECISION}`", f"tags.`{tag.CHAMPION_RUN}`"]
    params = [f"params.`{p}`" for p in dict.fromkeys([*ESTIMATOR_PARAMS, *varying])]
    shown = [*marks, *metrics, *same_rows, *params]
    return {"selectedColumns": [*DEFAULT_COLUMNS, *shown], "columnOrder": [*LEADING_COLUMNS, *shown]}


def varying_params(runs_params: list[dict[str, str]], prefix: str = HYPERPARAMS) -> tuple[str, ...]:
    """The params under `prefix` whose value is not the same in every run that has them (pure), sorted: the
    hyperparameters a person changed, worth a column."""
    values: dict[str, set[str]] = {}
    for params in runs_params:
        for key, value in params.items():
            if key.startswith(prefix):
                values.setdefault(key, set()).add(value)
    return tuple(sorted(k for k, v in values.items() if len(v) > 1))


def saved_view(state: dict, now_ms: int, name: str = RUN_TABLE_VIEW_NAME) -> str:
    """A saved view's tag value, as the UI writes and reads it (pure)."""
    return json.dumps({"name": name, "createdAt": now_ms, "updatedAt": now_ms, "state": json.dumps(state)})


def saved_state(tags: dict[str, str]) -> dict | None:
    """The table state of mlpipe's saved view in the experiment's `tags`, or None."""
    try:
        state = json.loads(json.loads(tags[RUN_TABLE_VIEW_TAG])["state"])
    except (KeyError, TypeError, ValueError):
        return None
    return state if isinstance(state, dict) else None


def saved_varying(tags: dict[str, str]) -> tuple[str, ...]:
    """The hyperparameter columns the saved view shows now (kept when the view is checked, not refreshed)."""
    columns = (saved_state(tags) or {}).get("selectedColumns", [])
    found = [c[len("params.`") : -1] for c in columns if isinstance(c, str) and c.startswith("params.`")]
    return tuple(p for p in found if p.startswith(HYPERPARAMS))


def ensure_run_table_view(
    client, experiment_id: str, task: str, tags: dict[str, str], varying: tuple[str, ...] | None = None
) -> None:
    """Save mlpipe's view of the experiment's run table (`tags`: the experiment's tags now) unless it is
    saved already with these columns; `varying`: the hyperparameter columns (None: those saved)."""
    state = run_table_state(task, saved_varying(tags) if varying is None else varying)
    if saved_state(tags) == state:
        return
    client.set_experiment_tag(experiment_id, RUN_TABLE_VIEW_TAG, saved_view(state, int(time.time() * 1000)))


def has_run_table_view(tags: dict[str, str]) -> bool:
    return RUN_TABLE_VIEW_TAG in tags


def runs_page(experiment_id: str, with_view: bool = True) -> str:
    """The experiment's run table in the model-training view (with mlpipe's columns when `with_view`),
    as the path after the UI's address."""
    query = MODEL_TRAINING_VIEW + (f"&viewStateShareKey={RUN_TABLE_VIEW}" if with_view else "")
    return f"#/experiments/{experiment_id}/runs?{query}"


def run_page(experiment_id: str, run_id: str) -> str:
    """One run's page in the model-training view, as the path after the UI's address."""
    return f"#/experiments/{experiment_id}/runs/{run_id}?{MODEL_TRAINING_VIEW}"


def start_page(client, experiment: str) -> str:
    """The page to open first: the experiment's run table (in mlpipe's view when it is saved), or the
    list of experiments while it does not exist yet."""
    exp = client.get_experiment_by_name(experiment)
    if exp is None:
        return EXPERIMENTS_PAGE
    return runs_page(exp.experiment_id, with_view=has_run_table_view(exp.tags))
