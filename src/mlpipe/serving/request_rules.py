"""Checking prediction requests against the training profile and the `validate` rules, before the
model sees them. The same profile (`artifacts/validate/profile.json`) and range rules the `validate`
stage uses: missing or unknown fields, wrong types, NaN/Infinity, categories never seen in training
and physically impossible values are refused (422, each field, value and rule listed); values outside
the training range but physically possible are accepted and flagged. Pure functions, no I/O."""

from __future__ import annotations

import json
import math
import operator
import sys
from dataclasses import asdict, dataclass
from itertools import chain, repeat
from operator import itemgetter

import numpy as np

from mlpipe.config import Params


@dataclass(frozen=True)
class Problem:
    record: int
    field: str
    value: object
    rule: str
    kind: str  # a short label for the metrics: unknown_field, missing_field, null, wrong_type, ...


@dataclass(frozen=True)
class RequestRules:
    categorical: dict[str, frozenset[str]]  # field -> categories seen in training
    numerical: dict[str, tuple[float | None, float | None]]  # field -> training (min, max)
    physical: dict[str, tuple[float | None, float | None]]  # field -> validate.ranges (min, max)
    not_null: frozenset[str]

    @property
    def fields(self) -> list[str]:
        return [*self.categorical, *self.numerical]


def rules_from(profile: dict, params: Params) -> RequestRules:
    cols = profile["columns"]
    cat = {c: frozenset(cols[c].get("categories", {})) for c in params.features.categorical}
    num = {c: (cols[c].get("min"), cols[c].get("max")) for c in params.features.numerical}
    phys = {c: (r.min, r.max) for c, r in params.validate_.ranges.items() if c in num}
    return RequestRules(cat, num, phys, frozenset(params.validate_.required_not_null) & (set(cat) | set(num)))


def _short(value: object) -> object:
    """The value as a problem shows it: long text cut; NaN/Infinity, alone or inside a list or object, as text
    (a JSON answer cannot hold them: the 422 would have become a 500)."""
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    if isinstance(value, list | dict):
        try:
            json.dumps(value, allow_nan=False)
        except ValueError:
            value = str(value)
    if isinstance(value, str) and len(value) > 80:
        return value[:77] + "..."
    return value


def check_record(i: int, record: object, rules: RequestRules) -> tuple[list[Problem], list[dict]]:
    """(problems that refuse the record, flags for accepted out-of-training-range values)."""
    if not isinstance(record, dict):
        return [
            Problem(
                i, "<record>", _short(str(record)), "must be a JSON object of feature: value", "not_an_object"
            )
        ], []
    problems, flags = [], []
    for name in sorted(set(record) - set(rules.fields)):
        problems.append(
            Problem(i, name, _short(record[name]), "unknown field (not a model feature)", "unknown_field")
        )
    for name in rules.fields:
        if name not in record:
            problems.append(
                Problem(
                    i,
                    name,
                    None,
                    "missing field (send null for an unknown value where allowed)",
                    "missing_field",
                )
            )
            continue
        value = record[name]
        if value is None:
            if name in rules.not_null:
                problems.append(Problem(i, name, None, "null where none are allowed", "null"))
            continue
        if name in rules.categorical:
            if not isinstance(value, str):
                problems.append(
                    Problem(i, name, _short(value), "wrong type: expected a string", "wrong_type")
                )
            elif value not in rules.categorical[name]:
                problems.append(
                    Problem(i, name, _short(value), "category never seen in training", "unseen_category")
                )
            continue
        if isinstance(value, bool) or not isinstance(value, int | float):
            problems.append(Problem(i, name, _short(value), "wrong type: expected a number", "wrong_type"))
            continue
        if isinstance(value, float) and not math.isfinite(
            value
        ):  # an int always is (and may be too big for a float)
            problems.append(Problem(i, name, str(value), "not a finite number (NaN/Infinity)", "not_finite"))
            continue
        lo, hi = rules.physical.get(name, (None, None))
        if lo is not None and value < lo:
            problems.append(
                Problem(i, name, value, f"below min {lo} (physically impossible)", "physically_impossible")
            )
            continue
        if hi is not None and value > hi:
            problems.append(
                Problem(i, name, value, f"above max {hi} (physically impossible)", "physically_impossible")
            )
            continue
        if isinstance(value, int) and abs(value) > _FLOAT_MAX:  # the model's frame is float64: no 500
            problems.append(Problem(i, name, _short(str(value)), "too large for a 64-bit float", "too_large"))
            continue
        tmin, tmax = rules.numerical[name]
        if (tmin is not None and value < tmin) or (tmax is not None and value > tmax):
            flags.append(
                {
                    "record": i,
                    "field": name,
                    "value": value,
                    "training_min": tmin,
                    "training_max": tmax,
                    "rule": "outside the training range (accepted)",
                }
            )
    return problems, flags


def check_request(records: list, rules: RequestRules) -> tuple[list[dict], list[dict]]:
    """(problems as dicts, flags) for a batch of records."""
    problems, flags, _ = checked_columns(records, rules)
    return problems, flags


def checked_columns(records: list, rules: RequestRules) -> tuple[list[dict], list[dict], dict | None]:
    """(problems as dicts, flags, columns): check_request's verdict, plus the accepted values a field at a
    time (categorical: list of str/None; numerical: float64 array, NaN for null) when they could be taken
    column-wise, else None. A batch is checked a column at a time first; one that is not plainly valid
    (or holds values whose float comparisons could differ from Python's) goes record by record through
    check_record, which names every problem: the same answer either way, the common case ~3.5x faster."""
    found = _plain_columns(records, rules)
    if found is not None:
        return [], *found
    problems, flags = [], []
    for i, record in enumerate(records):
        p, f = check_record(i, record, rules)
        problems += p
        flags += f
    return [asdict(p) for p in problems], flags, None


_FLOAT_MAX = sys.float_info.max
_NUMBER_TYPES = frozenset({int, float, type(None)})
_DICT = {dict}
_EXACT_INT = 2.0**53  # ints at or beyond this may round as float64: their comparisons go to check_record


def _plain_columns(records: list, rules: RequestRules) -> tuple[list[dict], dict] | None:
    """(flags, columns) when every record is an object of exactly the model's fields, every value passes
    its rule and compares as Python would; None otherwise (no verdict: check record by record). The numerical
    fields are checked together, as one rows x fields float64 array (a numpy call per rule, not per field)."""
    fields = rules.fields
    # objects of exactly the model's fields: as many keys as fields, and every field found (itemgetter)
    if (
        not records
        or not fields
        or set(map(type, records)) != _DICT
        or set(map(len, records)) != {len(fields)}
    ):
        return None
    columns: dict[str, object] = {}
    categorical, numerical = list(rules.categorical), list(rules.numerical)
    try:
        rows = (
            list(map(itemgetter(*fields), records)) if len(fields) > 1 else [(r[fields[0]],) for r in records]
        )
        by_field = list(zip(*rows, strict=True))  # a tuple of values per field, in `fields` order
        for name, values in zip(categorical, by_field, strict=False):
            seen = set(values)
            if None in seen:
                if name in rules.not_null:
                    return None
                seen.discard(None)
            if not seen <= rules.categorical[name]:
                return None
            columns[name] = list(values)
        if not numerical:
            return [], columns
        numbers = by_field[len(categorical) :]
        if not set(map(type, chain.from_iterable(numbers))) <= _NUMBER_TYPES:
            return None  # bool, str, list, ... : wrong_type
        nulls = sum(map(operator.countOf, numbers, repeat(None)))
        arr = np.array(numbers, dtype=np.float64).T  # rows x numerical fields; None -> NaN
    except (KeyError, TypeError, ValueError, OverflowError):  # a field missing, an unhashable category, ...
        return None
    bounds = _bounds_of(rules, numerical)
    missing = np.isnan(arr)
    # every NaN a null (a NaN sent as such is not_finite), no null where none are allowed
    if int(missing.sum()) != nulls or (missing & bounds.not_null).any():
        return None
    with np.errstate(invalid="ignore"):
        if (
            np.isinf(arr).any()
            or (np.abs(arr) >= _EXACT_INT).any()
            or (arr < bounds.phys_lo).any()
            or (arr > bounds.phys_hi).any()
        ):
            return None
        outside = (arr < bounds.train_lo) | (arr > bounds.train_hi)
    flags = []
    for i, j in zip(*np.nonzero(outside), strict=True):  # row-major: check_record's order
        name = numerical[j]
        tmin, tmax = rules.numerical[name]
        flags.append(
            {
                "record": int(i),
                "field": name,
                "value": records[i][name],
                "training_min": tmin,
                "training_max": tmax,
                "rule": "outside the training range (accepted)",
            }
        )
    for j, name in enumerate(numerical):
        columns[name] = np.ascontiguousarray(arr[:, j])
    return flags, columns


@dataclass(frozen=True)
class _Bounds:
    """Per numerical field (in `rules.numerical` order), as rows broadcast against a rows x fields array;
    an absent bound is -inf/inf."""

    phys_lo: np.ndarray
    phys_hi: np.ndarray
    train_lo: np.ndarray
    train_hi: np.ndarray
    not_null: np.ndarray


_BOUNDS: dict[int, tuple[RequestRules, _Bounds]] = {}


def _bounds_of(rules: RequestRules, numerical: list[str]) -> _Bounds:
    cached = _BOUNDS.get(id(rules))
    if cached is not None and cached[0] is rules:
        return cached[1]

    def edge(values, absent: float) -> np.ndarray:
        return np.array([absent if v is None else v for v in values], dtype=np.float64)

    phys = [rules.physical.get(n, (None, None)) for n in numerical]
    train = [rules.numerical[n] for n in numerical]
    bounds = _Bounds(
        edge([lo for lo, _ in phys], -np.inf),
        edge([hi for _, hi in phys], np.inf),
        edge([lo for lo, _ in train], -np.inf),
        edge([hi for _, hi in train], np.inf),
        np.array([n in rules.not_null for n in numerical]),
    )
    if len(_BOUNDS) > 16:  # a few models over a service's life (hot swaps)
        _BOUNDS.clear()
    _BOUNDS[id(rules)] = (rules, bounds)
    return bounds
