"""Schema, profile and checks of a data frame: one schema for training data, batches and requests."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import asdict, dataclass, field, replace

import numpy as np
import pandas as pd
import pandera.pandas as pa

from mlpipe.config import Params, label_text

QUANTILES = (0.01, 0.05, 0.25, 0.5, 0.75, 0.95, 0.99)
MAX_EXAMPLES = 3


@dataclass(frozen=True)
class Violation:
    """One broken rule: which column, which rule, how many rows, a few offending values."""

    column: str
    rule: str
    count: int
    examples: tuple[str, ...] = ()
    source: str = ""  # the file or batch the rows came from, when known

    def message(self) -> str:
        shown = f" (e.g. {', '.join(self.examples)})" if self.examples else ""
        where = f"{self.source}: " if self.source else ""
        return f"{where}{self.column}: {self.rule}: {self.count} offending{shown}"


# Rules one row breaks alone (a physical limit, a required value, an empty text): at landing the row is set
# aside, not its batch. Every other rule (a missing column, a type, the target's classes, the null rate) is
# the batch's.
ROW_RULES = ("below min ", "above max ", "null where none are allowed", "empty string")


def is_row_rule(rule: str) -> bool:
    """Whether `rule` (a Violation's rule text) is broken by single rows rather than by the batch."""
    return rule.startswith(ROW_RULES)


def build_schema(params: Params) -> pa.DataFrameSchema:
    """Columns the pipeline needs, their types, nullability and physically possible ranges
    (`validate.ranges`: physical limits, never the training profile's range, which is an expectation)."""
    required = set(params.validate_.required_not_null)
    ranges = params.validate_.ranges

    def checks(col: str) -> list[pa.Check]:
        rule = ranges.get(col)
        if rule is None:
            return []
        out = []
        if rule.min is not None:
            out.append(pa.Check.ge(rule.min))
        if rule.max is not None:
            out.append(pa.Check.le(rule.max))
        return out

    columns: dict[str, pa.Column] = {}
    for col in params.features.categorical:
        columns[col] = pa.Column(str, nullable=col not in required, checks=[pa.Check.str_length(min_value=1)])
    for col in params.features.numerical:
        columns[col] = pa.Column("float64", coerce=True, nullable=col not in required, checks=checks(col))
    target = params.dataset.target
    if params.task == "regression":
        columns[target] = pa.Column(
            "float64", coerce=True, nullable=target not in required, checks=checks(target)
        )
    else:  # labels: numbers or text, as they come; target_violations judges them as classes
        columns[target] = pa.Column(None, nullable=target not in required, checks=checks(target))
    for col in params.time_columns:
        columns[col] = pa.Column(pd.DatetimeTZDtype("ns", "UTC"), coerce=True, nullable=col not in required)
    return pa.DataFrameSchema(columns, strict=False)


MAX_CLASSES_SEEN = 1000  # labels remembered per check: enough to say "too many", bounded in memory


@dataclass
class TargetTally:
    """What the chunks said of the target: its labels (up to MAX_CLASSES_SEEN) and non-integer numbers."""

    labels: set = field(default_factory=set)
    fractional: int = 0
    fractional_examples: tuple[str, ...] = ()

    def add(self, s: pd.Series) -> None:
        present = s.dropna()
        if pd.api.types.is_float_dtype(present):
            frac = present[present != present.round()]
            self.fractional += int(len(frac))
            self.fractional_examples = (self.fractional_examples + tuple(str(v) for v in frac.head(3)))[:3]
        if len(self.labels) <= MAX_CLASSES_SEEN:
            self.labels.update(present.unique().tolist()[: MAX_CLASSES_SEEN + 1])


def target_violations(
    tally: TargetTally, task: str, target: str, positive_class: str | int | None = None
) -> list[Violation]:
    """A classifier's target must hold classes: no fractional numbers; two of them for binary, one of
    them dataset.positive_class when it is set (labels matched by their text)."""
    if task == "regression":
        return []
    if tally.fractional:
        return [
            Violation(
                target,
                f"fractional values with task {task} (rule: class labels are integers or text; "
                "a measured quantity is task: regression)",
                tally.fractional,
                tally.fractional_examples,
            )
        ]
    n = len(tally.labels)
    shown = tuple(str(v) for v in sorted(tally.labels, key=str)[:MAX_EXAMPLES])
    if task == "binary" and n > 2:
        more = "more than " if n > MAX_CLASSES_SEEN else ""
        return [
            Violation(
                target,
                f"{more}{n} classes with task binary (rule: binary has two classes; set task: multiclass)",
                n,
                shown,
            )
        ]
    if task == "binary" and n == 2 and positive_class is not None:
        if label_text(positive_class) not in {label_text(v) for v in tally.labels}:
            return [
                Violation(
                    target,
                    f"two classes, neither of them the positive class {positive_class!r} (rule: "
                    "dataset.positive_class is one of the target's two labels)",
                    n,
                    shown,
                )
            ]
    if task == "multiclass" and n > MAX_CLASSES_SEEN:
        return [
            Violation(
                target,
                f"more than {MAX_CLASSES_SEEN} classes (rule: a multiclass target has at most "
                f"{MAX_CLASSES_SEEN}; a number with this many values is task: regression)",
                n,
                shown,
            )
        ]
    return []


def _violations_from(errors: pa.errors.SchemaErrors) -> tuple[list[Violation], set]:
    """The broken rules of a chunk, and the index labels of its rows that break a row rule."""
    cases = errors.failure_cases.copy()
    missing = cases["check"] == "column_in_dataframe"
    cases.loc[missing, "column"] = cases.loc[missing, "failure_case"].astype(str)
    cases.loc[missing, "check"] = "required column is missing"
    cases["column"] = cases["column"].fillna("<frame>").astype(str)
    check = cases["check"].astype(str)
    # A value of the wrong type also fails the value checks run on the raw column (with an
    # exception as the "failure case"); report the type problem once, not its echoes.
    mistyped = set(cases.loc[check.str.startswith(("coerce_dtype", "dtype(")), "column"])
    keep = (
        ~cases["column"].isin(mistyped)
        | check.str.startswith(("coerce_dtype", "dtype("))
        | (check == "not_nullable")
    )
    cases = cases[keep]
    check = cases["check"].astype(str)
    # After a failed coercion the raw column also fails the dtype check: one rule per cause.
    uncoercible = set(cases.loc[check.str.startswith("coerce_dtype"), "column"])
    cases = cases[~(cases["column"].isin(uncoercible) & check.str.startswith("dtype("))]
    row_rule = cases["check"].astype(str).map(lambda c: is_row_rule(_rule_text(c)))
    row_cases = cases[row_rule & ~cases["column"].isin(uncoercible)]
    bad_rows = set(row_cases["index"].dropna().tolist())
    out = []
    for (column, check), group in cases.groupby(["column", "check"], sort=True):
        rule = _rule_text(str(check))
        count = len(group) if rule != "required column is missing" else 1
        examples = tuple(dict.fromkeys(str(v) for v in group["failure_case"].head(50)))[:MAX_EXAMPLES]
        out.append(
            Violation(str(column), rule, int(count), () if rule == "required column is missing" else examples)
        )
    return out, bad_rows


def _rule_text(check: str) -> str:
    if check.startswith("greater_than_or_equal_to("):
        return f"below min {check[len('greater_than_or_equal_to(') : -1]}"
    if check.startswith("less_than_or_equal_to("):
        return f"above max {check[len('less_than_or_equal_to(') : -1]}"
    if check == "not_nullable":
        return "null where none are allowed"
    if check.startswith("coerce_dtype("):
        return f"not convertible to {check[len('coerce_dtype(') : -1]}"
    if check.startswith("dtype("):
        return f"wrong type, expected {check[len('dtype(') : -1]}"
    if check.startswith("str_length("):
        return "empty string"
    return check


def null_rate_violations(nulls: dict[str, int], rows: int, max_rate: float) -> list[Violation]:
    """Columns whose share of nulls exceeds `max_rate` (a broken feed, not the odd missing reading)."""
    out = []
    for col, count in nulls.items():
        rate = count / rows if rows else 0.0
        if rate > max_rate:
            out.append(Violation(col, f"null rate {rate:.3f} above max {max_rate}", count))
    return out


def validate_frame(df: pd.DataFrame, params: Params) -> list[Violation]:
    """Every violation of the schema and the null-rate rule; an empty list means the data is valid."""
    return validate_chunks([df], params)


def validate_chunks(chunks: Iterable[pd.DataFrame], params: Params) -> list[Violation]:
    """validate_frame over the row chunks of one source, holding one chunk at a time (ChunkValidator)."""
    validator = ChunkValidator(params)
    for df in chunks:
        validator.add(df)
    return validator.violations()


class ChunkValidator:
    """The schema and null-rate checks fed one chunk at a time: schema violations of the chunks are merged
    (counts added, first examples kept) and the null-rate rule is judged on the null counts of all rows.
    Memory is that of one chunk: a column already refused for its type (`skip`) is not value-checked, so
    a chunk of junk never becomes a failure case per cell."""

    def __init__(self, params: Params) -> None:
        self.params = params
        self.schema = build_schema(params)
        self.columns = [*params.features.columns, params.dataset.target]
        self.rows = 0
        self.bad_rows = 0  # rows that break a row rule (is_row_rule), each counted once
        self.nulls: dict[str, int] = {}
        self.found: dict[tuple[str, str], Violation] = {}
        self.tally = TargetTally()

    def add(self, df: pd.DataFrame, skip: Iterable[str] = ()) -> np.ndarray:
        """Check one chunk; columns in `skip` count for rows and nulls only. Returns which of its rows break
        a row rule (a boolean mask in row order)."""
        skipped = set(skip)
        target = self.params.dataset.target
        self.rows += len(df)
        if target in df.columns and target not in skipped:
            self.tally.add(df[target])
        schema = self.schema
        if skipped & set(schema.columns):
            schema = schema.remove_columns(sorted(skipped & set(schema.columns)))
        bad = np.zeros(len(df), dtype=bool)
        try:
            schema.validate(df, lazy=True)
        except pa.errors.SchemaErrors as errors:
            found, bad_labels = _violations_from(errors)
            for v in found:
                self.found[(v.column, v.rule)] = merge_violations(self.found.get((v.column, v.rule)), v)
            bad = np.asarray(df.index.isin(list(bad_labels)), dtype=bool)
        self.bad_rows += int(bad.sum())
        for col in self.columns:
            if col in df.columns:
                self.nulls[col] = self.nulls.get(col, 0) + int(df[col].isna().sum())
        return bad

    def violations(self) -> list[Violation]:
        """Every rule broken by the chunks seen so far; an empty list means they are valid."""
        p = self.params
        violations = [Violation("<frame>", "no rows", 0)] if self.rows == 0 else []
        violations.extend(self.found.values())
        violations.extend(target_violations(self.tally, p.task, p.dataset.target, p.dataset.positive_class))
        violations.extend(null_rate_violations(self.nulls, self.rows, p.validate_.max_null_rate))
        return violations


def bad_share_violation(bad: int, rows: int, max_share: float) -> Violation | None:
    """The batch-level refusal when more of its rows break row rules than `validate.max_bad_row_share`
    allows (a broken feed, not odd rows), or when none would be left; None when the rest may go in."""
    if not bad:
        return None
    share = bad / rows
    if share <= max_share and bad < rows:
        return None
    return Violation(
        "<rows>",
        f"{bad} of {rows} rows break a row rule, share {share:.4f} above max_bad_row_share {max_share:g} "
        "(rule: a batch whose share of bad rows is above it is refused whole; below it they are set aside)",
        bad,
    )


def outside_expected(df: pd.DataFrame, profile: dict) -> dict[str, tuple[int, int]]:
    """Per numerical column of the training profile, how many of `df`'s rows lie below its min and above
    its max: an expectation learned from a sample, so such rows are taken in and flagged, never refused."""
    out = {}
    for col, c in profile.get("columns", {}).items():
        if c.get("kind") != "numerical" or col not in df.columns:
            continue
        values = pd.to_numeric(df[col], errors="coerce")
        low = int((values < c["min"]).sum()) if c.get("min") is not None else 0
        high = int((values > c["max"]).sum()) if c.get("max") is not None else 0
        if low or high:
            out[col] = (low, high)
    return out


def expectation_notes(counts: dict[str, tuple[int, int]], profile: dict) -> list[str]:
    """One line per column with rows outside the training range, e.g. "price: 5874 rows above the training
    max 9360.0 (accepted, flagged)"."""
    notes = []
    for col, (low, high) in sorted(counts.items()):
        c = profile["columns"][col]
        parts = [
            f"{n} rows {side} the training {bound} {c[bound]}"
            for n, side, bound in ((low, "below", "min"), (high, "above", "max"))
            if n
        ]
        notes.append(f"{col}: {', '.join(parts)} (accepted, flagged)")
    return notes


def merge_violations(seen: Violation | None, new: Violation) -> Violation:
    """One rule broken in two chunks: counts add up (a missing column counts once), first examples kept."""
    if seen is None:
        return new
    count = 1 if new.rule == "required column is missing" else seen.count + new.count
    examples = tuple(dict.fromkeys(seen.examples + new.examples))[:MAX_EXAMPLES]
    return replace(seen, count=count, examples=examples)


def profile_frame(df: pd.DataFrame, params: Params) -> dict:
    """Types, null rates, ranges, quantiles and categories of every used column (the training profile)."""
    cols: dict[str, dict] = {}
    for col in params.features.categorical:
        s = df[col]
        counts = s.value_counts(dropna=True).sort_index()
        cols[col] = {
            "kind": "categorical",
            "dtype": str(s.dtype),
            "null_rate": float(s.isna().mean()),
            "n_unique": int(counts.size),
            "categories": {str(k): int(v) for k, v in counts.items()},
        }
    target = params.dataset.target
    numeric_target = params.task == "regression" or pd.api.types.is_numeric_dtype(df[target])
    for col in [*params.features.numerical, *([target] if numeric_target else [])]:
        s = pd.to_numeric(df[col], errors="coerce").astype("float64")
        present = s.dropna()
        cols[col] = {
            "kind": "target" if col == params.dataset.target else "numerical",
            "dtype": str(df[col].dtype),
            "null_rate": float(s.isna().mean()),
            "min": _num(present.min()),
            "max": _num(present.max()),
            "mean": _num(present.mean()),
            "std": _num(present.std()),
            "quantiles": {str(q): _num(present.quantile(q)) for q in QUANTILES} if len(present) else {},
        }
    if params.task != "regression":
        counts = df[target].dropna().value_counts().sort_index()
        classes = {"classes": {str(k): int(v) for k, v in counts.items()}}
        cols[target] = {
            "kind": "target",
            "dtype": str(df[target].dtype),
            "null_rate": float(df[target].isna().mean()),
            **cols.get(target, {}),
            **classes,
        }
    time_col = params.dataset.time_column
    t = df[time_col] if time_col else None
    return {
        "rows": int(len(df)),
        "task": params.task,
        "target": target,
        "target_rate": _num(pd.to_numeric(df[target], errors="coerce").mean()) if numeric_target else None,
        "time_column": time_col,
        "time_min": str(t.min()) if t is not None else None,
        "time_max": str(t.max()) if t is not None else None,
        "columns": cols,
    }


def _num(value: float) -> float | None:
    value = float(value)
    return None if np.isnan(value) else round(value, 6)


def render_report(profile: dict | None, violations: list[Violation], source: str) -> str:
    """Markdown validation report: verdict, broken rules, then the column profile."""
    lines = [f"# Validation report: {source}", ""]
    if violations:
        lines += [
            f"**FAILED**: {len(violations)} rule(s) broken.",
            "",
            "| source | column | rule | offending rows | examples |",
            "|---|---|---|---|---|",
        ]
        lines += [
            f"| {v.source} | {v.column} | {v.rule} | {v.count} | {', '.join(v.examples)} |"
            for v in violations
        ]
    else:
        lines.append("**PASSED**: every rule holds.")
    if profile:
        lines += [
            "",
            f"Rows: {profile['rows']}, task: {profile.get('task', 'binary')}, "
            f"target rate: {profile['target_rate']}, time: {profile['time_min']} .. {profile['time_max']}",
            "",
            "| column | kind | null rate | min | median | max | categories |",
            "|---|---|---|---|---|---|---|",
        ]
        for name, c in profile["columns"].items():
            if "classes" in c and "min" not in c:
                lines.append(
                    f"| {name} | target | {c.get('null_rate', 0):.4f} |  |  |  | {len(c['classes'])} |"
                )
            elif c["kind"] == "categorical":
                lines.append(f"| {name} | categorical | {c['null_rate']:.4f} |  |  |  | {c['n_unique']} |")
            else:
                lines.append(
                    f"| {name} | {c['kind']} | {c['null_rate']:.4f} | {c['min']} | "
                    f"{c['quantiles'].get('0.5')} | {c['max']} |  |"
                )
    return "\n".join(lines) + "\n"


def violations_as_dicts(violations: list[Violation]) -> list[dict]:
    return [asdict(v) for v in violations]
