"""Profile a user's table and propose the params.yaml sections `mlpipe init` writes: the task, the features,
the columns to exclude, and the validation rules. Pure: a DataFrame in, a `Proposal` out, every decision
explained by one line in `Proposal.reasons`."""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd
from pandas.api import types as ptypes

from mlpipe.config import label_text
from mlpipe.data.frames import period_label
from mlpipe.errors import ConfigError

TASKS = ("binary", "multiclass", "regression")
MAX_CLASSES = 20  # an integral numeric target with at most this many values is a set of classes
MIN_ROWS = 20  # uniqueness and cardinality rules need at least this many rows to mean anything
TEXT_DISTINCT_SHARE = 0.5  # text with a larger share of distinct values is free text or an id
LEAK_CORR = 0.98  # |Pearson| or |Spearman| with a numeric target at or above this is likely leakage
MAX_PURE_VALUES = 50  # purity (one class per value) is only meaningful for a column with few values
TIME_CORR = 0.9  # |Spearman| with the time column at or above this: the column tracks time
MIN_PHASE = 0.02  # a value held over one stretch of time is a phase when the stretch has this share of rows
# A physical limit (validate.ranges: a row beyond it is refused) is written only where the profile justifies
# it; a sample's observed range is an expectation (the training profile: beyond it rows are flagged).
NEAR_ZERO = 0.1  # a non-negative column whose min is at most this share of its max is a magnitude
SHARE_ENDS = 0.05  # fractional values in [0, 1] reaching within this of both ends are a share
CALENDAR_MATCH = 0.95  # a column equal to a part of the time in this share of rows repeats that part
# Parts of the time that only grow through a year: with a time split every later batch holds values the
# training period never saw, so such a column drifts, and is out of range, by time passing alone. (Day of the
# month, weekday and hour repeat within a month and stay features.)
GROWING_PARTS = {
    "year": lambda t: t.dt.year,
    "quarter": lambda t: t.dt.quarter,
    "month": lambda t: t.dt.month,
    "week of the year": lambda t: t.dt.isocalendar().week,
    "day of the year": lambda t: t.dt.dayofyear,
}


@dataclass(frozen=True)
class Proposal:
    task: str  # "binary" | "multiclass" | "regression"
    categorical: list[str]
    numerical: list[str]
    leakage: list[str]  # columns excluded as features (likely leakage or identifiers)
    required_not_null: list[str]
    ranges: dict[str, dict]  # column -> physical limits {"min": ..., "max": ...} where justified
    max_null_rate: float
    reasons: list[str]  # one human line per decision
    positive_class: str | int | None = None  # binary: the label whose probability the model answers


def is_numeric(s: pd.Series) -> bool:
    """Int or float (nullable included), never bool."""
    return ptypes.is_numeric_dtype(s) and not ptypes.is_bool_dtype(s)


def is_text(s: pd.Series) -> bool:
    """Object, string, category or bool: values that are labels, not quantities."""
    return (
        ptypes.is_object_dtype(s)
        or ptypes.is_string_dtype(s)
        or isinstance(s.dtype, pd.CategoricalDtype)
        or ptypes.is_bool_dtype(s)
    )


def fractional_example(s: pd.Series) -> float | None:
    """The first non-null value of a numeric series that is not a whole number, or None if all are whole."""
    v = s.dropna().astype("float64")
    frac = v[(v % 1) != 0]
    return float(frac.iloc[0]) if len(frac) else None


def infer_task(y: pd.Series) -> tuple[str, str]:
    """(task, reason) from the target alone. Text-like: binary if 2 distinct values else multiclass;
    numeric, integral and at most MAX_CLASSES distinct: binary if 2 else multiclass; else regression."""
    n, kind = y.nunique(dropna=True), str(y.dtype)
    if n < 2:
        raise ConfigError(f"target {y.name!r}: {n} distinct value(s) (rule: a target must vary)")
    if not is_numeric(y):
        task = "binary" if n == 2 else "multiclass"
        return task, f"task {task}: target {y.name!r} is {kind} with {n} distinct values"
    if fractional_example(y) is None and n <= MAX_CLASSES:
        task = "binary" if n == 2 else "multiclass"
        return (
            task,
            f"task {task}: target {y.name!r} is integral {kind} with {n} distinct values (<= {MAX_CLASSES})",
        )
    return "regression", f"task regression: target {y.name!r} is {kind} with {n} distinct values"


def check_task(y: pd.Series, task: str) -> str:
    """The reason a given task fits the target, or ConfigError saying why it does not."""
    name, n = y.name, y.nunique(dropna=True)
    if task not in TASKS:
        raise ConfigError(f"task {task!r}: unknown (rule: one of {', '.join(TASKS)})")
    if task == "regression":
        if not is_numeric(y):
            raise ConfigError(
                f"target {name!r}: {y.dtype} values cannot be task regression "
                "(rule: regression needs a numeric target)"
            )
        return f"task regression: given; target {name!r} is {y.dtype} with {n} distinct values"
    example = fractional_example(y) if is_numeric(y) else None
    if example is not None:
        raise ConfigError(
            f"target {name!r}: fractional values (e.g. {example:g}) cannot be classes "
            "(rule: a measured quantity is task: regression)"
        )
    if n < 2:
        raise ConfigError(f"target {name!r}: {n} class(es) (rule: a classifier needs at least two)")
    if task == "binary" and n != 2:
        raise ConfigError(
            f"target {name!r}: {n} classes with task binary (rule: binary has two; use multiclass)"
        )
    return f"task {task}: given; target {name!r} has {n} classes"


def exclusion_reason(s: pd.Series) -> str | None:
    """Why a candidate feature is not a feature by itself (before looking at the target), or None."""
    rows, n = len(s), s.nunique(dropna=True)
    if s.isna().all():
        return "always null"
    if ptypes.is_datetime64_any_dtype(s):
        return "a timestamp, not a feature; derive parts of it yourself"
    if not (is_numeric(s) or is_text(s)):
        return f"unsupported dtype {s.dtype}"
    if n <= 1:
        return "constant (one value in the profiled rows): no signal"
    if rows >= MIN_ROWS and n == rows and (is_text(s) or ptypes.is_integer_dtype(s)):
        return "an identifier (unique per row)"
    if is_text(s) and rows >= MIN_ROWS and n > TEXT_DISTINCT_SHARE * rows:
        return f"high-cardinality text ({n} distinct of {rows} rows)"
    return None


def calendar_reason(s: pd.Series, times: pd.Series | None) -> str | None:
    """Why an integral column that repeats a growing part of the time column (its year, quarter, month, week
    or day of the year, in at least CALENDAR_MATCH of the rows where both have values) is not a feature;
    None for any other column, or without a time column."""
    if times is None or not ptypes.is_datetime64_any_dtype(times) or not is_numeric(s):
        return None
    both = s.notna() & times.notna()
    if both.sum() < MIN_ROWS or fractional_example(s[both]) is not None:
        return None
    values = s[both].astype("float64")
    for part, of in GROWING_PARTS.items():
        share = float((values == of(times[both]).astype("float64")).mean())
        if share >= CALENDAR_MATCH:
            return (
                f"the time column's {part} (equal in {share:.0%} of rows): with a time split every later "
                "batch is outside the training period's values, so it would drift by time passing alone; "
                "add it back to features.numerical if seasons matter and the training data spans them"
            )
    return None


def time_proxy_reason(s: pd.Series, times: pd.Series | None) -> str | None:
    """Why a numeric column whose rank order follows the time column (|Spearman| >= TIME_CORR over the rows
    where both have values: a decimal year, an epoch number, a running counter) is not a feature; None for
    any other column, or without a time column."""
    if times is None or not ptypes.is_datetime64_any_dtype(times) or not is_numeric(s):
        return None
    both = s.notna() & times.notna()
    if both.sum() < MIN_ROWS or s[both].nunique() < 2:
        return None
    corr = abs(s[both].astype("float64").rank().corr(times[both].rank()))
    if corr >= TIME_CORR:
        return (
            f"tracks the time column (|rank corr| {corr:.2f} >= {TIME_CORR}): every later batch lies beyond "
            "the training period's values, so it would drift, and the model extrapolate, by time alone"
        )
    return None


def phase_reason(s: pd.Series, times: pd.Series | None) -> str | None:
    """Why a column (text or number) whose every value holds over one stretch of time, each at least
    MIN_PHASE of the rows, is not a feature (a season, a month name, a version: the period's phases, so every
    later period brings a value training never saw); None for any other column, or without a time column."""
    if times is None or not ptypes.is_datetime64_any_dtype(times):
        return None
    both = pd.DataFrame({"t": times, "v": s.astype("string")}).dropna()
    n = both["v"].nunique()
    if len(both) < MIN_ROWS or n < 2:
        return None
    ordered = both.sort_values(["t", "v"], kind="stable")["v"].to_numpy(dtype=object)
    runs = 1 + int((ordered[1:] != ordered[:-1]).sum())
    if runs != n or both["v"].value_counts().min() < max(2, MIN_PHASE * len(both)):
        return None
    return (
        f"a phase of the time column ({n} values, each over one stretch of time): every later period "
        "brings a value the training data never saw; add it back to the features if its values recur"
    )


def leakage_reason(s: pd.Series, y: pd.Series, task: str) -> str | None:
    """'likely leakage: ...' if the feature nearly is the target, else None. Numeric feature and numeric
    target: max(|Pearson|, |Spearman|) >= LEAK_CORR. Classification: a non-constant column with at most
    MAX_PURE_VALUES values and at most half as many values as rows, each value mapping to exactly one class
    (purity 1.0)."""
    pairs = pd.DataFrame({"x": s, "y": y}).dropna()
    if is_numeric(s) and is_numeric(y) and len(pairs) >= 3 and pairs.nunique().min() >= 2:
        x, t = pairs["x"].astype("float64"), pairs["y"].astype("float64")
        corr = max(abs(x.corr(t)), abs(x.rank().corr(t.rank())))  # Spearman: Pearson of ranks
        if corr >= LEAK_CORR:
            return f"likely leakage: |corr| {corr:.2f} with the target"
    n = pairs["x"].nunique()
    few = 2 <= n <= min(MAX_PURE_VALUES, len(pairs) / 2)  # > rows/2 distinct: purity is mere chance
    if task != "regression" and few and pairs["y"].nunique() >= 2:
        if pairs.groupby("x", observed=True)["y"].nunique().max() == 1:
            return "likely leakage: determines the target (purity 1.0)"
    return None


def physical_limit(s: pd.Series) -> tuple[dict[str, float], str] | None:
    """The limit no real value can pass, where the profile justifies one, with its reason; else None (the
    observed range is an expectation, never a limit). A 0/1 flag is 0 or 1; fractional values filling [0, 1]
    to within SHARE_ENDS of both ends are a share in [0, 1]; a non-negative column reaching down to within
    NEAR_ZERO of its max (a count, size, amount or price) is never negative."""
    v = s.dropna().astype("float64")
    if len(v) < MIN_ROWS or v.nunique() < 2:
        return None
    lo, hi = float(v.min()), float(v.max())
    if set(v.unique()) <= {0.0, 1.0}:
        return {"min": 0.0, "max": 1.0}, "a 0/1 flag: 0 or 1"
    if fractional_example(v) is not None and 0 <= lo <= SHARE_ENDS and 1 - SHARE_ENDS <= hi <= 1:
        return {"min": 0.0, "max": 1.0}, f"a share: {lo:g}..{hi:g} fills [0, 1]"
    if lo >= 0 and hi > 0 and lo <= NEAR_ZERO * hi:
        return {"min": 0.0}, f"never negative: {lo:g}..{hi:g}, a count, size, amount or price"
    return None


def null_rate_limit(rates: list[float]) -> float:
    """max(0.6, highest observed null rate + 0.1), capped at 1.0, rounded to 2 decimals."""
    return round(min(1.0, max(0.6, max(rates, default=0.0) + 0.1)), 2)


def required_columns(df: pd.DataFrame, target: str, time_column: str | None) -> tuple[list[str], str]:
    """(validate.required_not_null, its reason): the time column and a target that has no nulls. A feature
    with no nulls in the sample is not required: every estimator imputes, and a feed that loses a column is
    caught by max_null_rate."""
    required = [c for c in df.columns if c == time_column or (c == target and not df[c].isna().any())]
    return required, (
        f"required_not_null {required}: the time places a row, the target is what it teaches; features "
        "may be null (the model imputes; max_null_rate catches a feed that loses a column)"
    )


def _shown_limit(limit: dict[str, float]) -> str:
    return f"[{limit.get('min', '-inf'):g}, {limit['max']:g}]" if "max" in limit else f">= {limit['min']:g}"


def positive_class_decision(y: pd.Series, given: str | int | None = None) -> tuple[str | int, str]:
    """(label, reason) of a binary target's positive class: `given` (matched by its text, ConfigError
    naming the labels when it is none of them), else the minority class, as in credit, fraud and churn
    tables; a tie goes to the sorted-last label (scikit-learn's classes_[1])."""
    counts = y.dropna().value_counts()
    labels = sorted(counts.index) if is_numeric(y) else sorted(counts.index, key=str)  # as the model sorts
    shares = {label: counts[label] / counts.sum() for label in labels}
    if given is not None:
        found = [label for label in labels if label_text(label) == label_text(given)]
        if not found:
            raise ConfigError(
                f"positive class {given!r}: not a label of target {y.name!r} "
                f"(labels: {', '.join(map(str, labels))}; rule: the positive class is one of them)"
            )
        label, why = found[0], "given"
    else:
        label = min(reversed(labels), key=lambda v: counts[v])  # reversed: a tie goes to the sorted-last
        why = "the minority class"
    value = label.item() if hasattr(label, "item") else label
    # The model's labels are int64 for numbers (a column with nulls reads as 1.0) and bools, else text.
    value = int(value) if isinstance(value, bool | float) else value
    return value, (
        f"positive class {value!r}: {why} ({100 * shares[label]:.1f}% of rows); "
        "set dataset.positive_class to change"
    )


def _require(df: pd.DataFrame, column: str, role: str) -> None:
    if column not in df.columns:
        raise ConfigError(
            f"{role} {column!r}: not a column of the data (columns: {', '.join(map(str, df.columns))})"
        )


def propose(
    df: pd.DataFrame,
    target: str,
    time_column: str | None = None,
    task: str | None = None,
    positive: str | int | None = None,
) -> Proposal:
    """The params.yaml proposal for `df`: task, positive class (binary), features, exclusions and
    validation rules, with reasons. Columns keep the order of `df` throughout."""
    _require(df, target, "target")
    if time_column is not None:
        _require(df, time_column, "time column")
        if time_column == target:
            raise ConfigError(f"time column {time_column!r}: is the target (rule: they must differ)")
    y = df[target]
    task, why = infer_task(y) if task is None else (task, check_task(y, task))
    reasons = [why]
    if positive is not None and task != "binary":
        raise ConfigError(f"positive class {positive!r}: given for task {task} (rule: only binary has one)")
    positive_class, why = positive_class_decision(y, positive) if task == "binary" else (None, "")
    reasons += [why] if why else []
    categorical, numerical, excluded = [], [], []
    times = df[time_column] if time_column is not None else None
    for col in df.columns:
        if col in (target, time_column):
            continue
        s = df[col]
        reason = (
            exclusion_reason(s)
            or calendar_reason(s, times)
            or time_proxy_reason(s, times)
            or phase_reason(s, times)
            or leakage_reason(s, y, task)
        )
        if reason:
            excluded.append(col)
            reasons.append(f"excluded {col!r}: {reason}")
        elif is_numeric(s):
            numerical.append(col)
            reasons.append(f"numerical {col!r}: {s.dtype}")
        else:
            categorical.append(col)
            reasons.append(f"categorical {col!r}: {s.dtype} with {s.nunique()} distinct values")
    features = set(categorical) | set(numerical)
    if y.isna().any():
        reasons.append(
            f"target {target!r}: {int(y.isna().sum())} rows without a value, left out of training and test"
        )
    required, why_required = required_columns(df, target, time_column)
    reasons.append(why_required)
    ranged = set(numerical) | ({target} if task == "regression" else set())
    ranges = {}
    for col in (c for c in df.columns if c in ranged):
        found = physical_limit(df[col])
        if found:
            ranges[col] = found[0]
            reasons.append(f"limit {col!r} {_shown_limit(found[0])}: {found[1]} (a row beyond is refused)")
    reasons.append(
        "every other range is an expectation, not a limit: values beyond the training data's are taken in, "
        "flagged and fed to drift; add validate.ranges for what is physically impossible"
    )
    used = [c for c in df.columns if c in features]
    if time_column is not None and used:  # batches are months: the rule holds for each month's rates
        months = period_label(df[time_column], "month")  # the periods batches are cut by
        rates = [float(r) for r in df[used].isna().groupby(months).mean().max()]
        scope = "in any month"
    else:
        rates, scope = [float(df[c].isna().mean()) for c in used], "overall"
    limit = null_rate_limit(rates)
    reasons.append(
        f"max_null_rate {limit}: highest feature null rate {scope} {max(rates, default=0.0):.2f} + 0.1, "
        "at least 0.6"
    )
    return Proposal(task, categorical, numerical, excluded, required, ranges, limit, reasons, positive_class)
