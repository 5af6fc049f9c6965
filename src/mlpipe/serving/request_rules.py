"""Checking prediction requests against the training profile and the `validate` rules, before the
model sees them, record by record. The same profile (`artifacts/validate/profile.json`) and range rules the
`validate` stage uses: a record with a missing or unknown field, a wrong type, NaN/Infinity or a physically
impossible value is refused (each field, value and rule listed), alone: the other records are answered
(`judge_records`). A category never seen in training is answered (every estimator's preprocessing encodes
it as an unknown category, as a null) and flagged, unless the project says `serve.unseen_category: refuse`;
values outside the training range but physically possible are accepted and flagged. Pure functions, no I/O."""

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
    unseen_category: str = (
        "flag"  # serve.unseen_category: flag (answer and flag) | refuse (refuse the record)
    )

    @property
    def fields(self) -> list[str]:
        return [*self.categorical, *self.numerical]


def rules_from(profile: dict, params: Params) -> RequestRules:
    cols = profile["columns"]
    cat = {c: frozenset(cols[c].get("categories", {})) for c in params.features.categorical}
    num = {c: (cols[c].get("min"), cols[c].get("max")) for c in params.features.numerical}
    phys = {c: (r.min, r.max) for c, r in params.validate_.ranges.items() if c in num}
    not_null = frozenset(params.validate_.required_not_null) & (set(cat) | set(num))
    return RequestRules(cat, num, phys, not_null, params.serve.unseen_category)


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


UNSEEN_ACCEPTED = "category never seen in training (accepted)"
UNSEEN_REFUSED = "category never seen in training (refused: serve.unseen_category is refuse)"


def unseen_flag(i: int, name: str, value: str) -> dict:
    """The flag of an accepted category never seen in training (the model answers it as an unknown one)."""
    return {"record": i, "field": name, "value": _short(value), "rule": UNSEEN_ACCEPTED}


def range_flag(i: int, name: str, value: object, tmin: float | None, tmax: float | None) -> dict:
    """The flag of an accepted value outside the training range (physically possible)."""
    return {
        "record": i,
        "field": name,
        "value": value,
        "training_min": tmin,
        "training_max": tmax,
        "rule": "outside the training range (accepted)",
    }


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
    for name in rules.fields:  # at most one problem or flag per field, in the order they are reported
        if name not in record:
            rule = "missing field (send null for an unknown value where allowed)"
            problems.append(Problem(i, name, None, rule, "missing_field"))
            continue
        value = record[name]
        if value is None:
            if name in rules.not_null:
                problems.append(Problem(i, name, None, "null where none are allowed", "null"))
        elif name in rules.categorical:
            found = _category_check(i, name, value, rules)
            if isinstance(found, Problem):
                problems.append(found)
            elif found is not None:
                flags.append(found)
        else:
            found = _number_problem(i, name, value, rules)
            if found is not None:
                problems.append(found)
                continue
            tmin, tmax = rules.numerical[name]
            if (tmin is not None and value < tmin) or (tmax is not None and value > tmax):
                flags.append(range_flag(i, name, value, tmin, tmax))
    return problems, flags


def _category_check(i: int, name: str, value: object, rules: RequestRules) -> Problem | dict | None:
    """A categorical field's value: its problem, its unseen-category flag, or None when it was seen."""
    if not isinstance(value, str):
        return Problem(i, name, _short(value), "wrong type: expected a string", "wrong_type")
    if value in rules.categorical[name]:
        return None
    if rules.unseen_category == "refuse":
        return Problem(i, name, _short(value), UNSEEN_REFUSED, "unseen_category")
    return unseen_flag(i, name, value)


def _number_problem(i: int, name: str, value: object, rules: RequestRules) -> Problem | None:
    """The first rule a numerical field's (non-null) value breaks, or None."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return Problem(i, name, _short(value), "wrong type: expected a number", "wrong_type")
    # an int is always finite (and may be too big for a float)
    if isinstance(value, float) and not math.isfinite(value):
        return Problem(i, name, str(value), "not a finite number (NaN/Infinity)", "not_finite")
    lo, hi = rules.physical.get(name, (None, None))
    if lo is not None and value < lo:
        return Problem(i, name, value, f"below min {lo} (physically impossible)", "physically_impossible")
    if hi is not None and value > hi:
        return Problem(i, name, value, f"above max {hi} (physically impossible)", "physically_impossible")
    if isinstance(value, int) and abs(value) > _FLOAT_MAX:  # the model's frame is float64: no 500
        return Problem(i, name, _short(str(value)), "too large for a 64-bit float", "too_large")
    return None


@dataclass(frozen=True)
class Verdict:
    """A request judged record by record. `answered`: the positions of the records the model answers, in
    order; `problems`: every problem of every refused record (as dicts, each naming its record); `flags`:
    those of the answered records; `columns`: the answered values a field at a time when every record is
    answered and they could be taken column-wise (categorical: list of str/None; numerical: float64 array,
    NaN for null), else None."""

    records: int
    answered: list[int]
    problems: list[dict]
    flags: list[dict]
    columns: dict | None = None

    @property
    def refused(self) -> int:
        return self.records - len(self.answered)

    def counts(self) -> dict[str, int]:
        return {"records": self.records, "answered": len(self.answered), "refused": self.refused}

    def taken(self, records: list) -> list:
        """The answered records, in order."""
        return records if not self.refused else [records[i] for i in self.answered]

    def per_record(self, values: list) -> list:
        """`values` (one per answered record) as one per record of the request, None where refused."""
        if not self.refused:
            return values
        out: list = [None] * self.records
        for i, v in zip(self.answered, values, strict=True):
            out[i] = v
        return out


def judge_records(records: list, rules: RequestRules) -> Verdict:
    """Each record judged alone: a record that breaks a rule is refused, the others are answered. A batch is
    checked a column at a time first; one that is not plainly valid (or holds values whose float comparisons
    could differ from Python's) goes record by record through check_record, which names every problem: the
    same verdict either way, the common case ~3.5x faster."""
    found = _plain_columns(records, rules)
    if found is not None:
        flags, columns = found
        return Verdict(len(records), list(range(len(records))), [], flags, columns)
    answered, problems, flags = [], [], []
    for i, record in enumerate(records):
        p, f = check_record(i, record, rules)
        if p:
            problems += p
        else:
            answered.append(i)
            flags += f
    return Verdict(len(records), answered, [asdict(p) for p in problems], flags)


def check_request(records: list, rules: RequestRules) -> tuple[list[dict], list[dict]]:
    """(problems as dicts, flags of the accepted records) for a batch of records."""
    verdict = judge_records(records, rules)
    return verdict.problems, verdict.flags


_TRUE, _FALSE = frozenset({"true", "1", "yes", "on"}), frozenset({"false", "0", "no", "off"})


def all_or_nothing(query_value: str | None) -> bool | None:
    """The `?all_or_nothing=` of a request: True (any refused record refuses the whole request, 422), False
    (the default: each record judged alone), None when it is not a boolean."""
    if query_value is None:
        return False
    value = query_value.strip().lower()
    return True if value in _TRUE else False if value in _FALSE else None


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
        unseen = _categorical_columns(categorical, by_field, rules, columns)
        if unseen is None:
            return None
        if not numerical:
            return _in_record_order(unseen, fields), columns
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
    flags = _range_flags(outside, numerical, records, rules)
    for j, name in enumerate(numerical):
        columns[name] = np.ascontiguousarray(arr[:, j])
    return (_in_record_order(unseen + flags, fields) if unseen else flags), columns


def _range_flags(outside: np.ndarray, numerical: list[str], records: list, rules: RequestRules) -> list[dict]:
    """The flags of the values outside the training range (`outside`: rows x numerical fields), row-major
    as check_record gives them. Dict literals: a range_flag call per flag measured slower here."""
    flags = []
    for i, j in zip(*np.nonzero(outside), strict=True):
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
    return flags


def _categorical_columns(
    categorical: list[str], by_field: list[tuple], rules: RequestRules, columns: dict[str, object]
) -> list[dict] | None:
    """Each categorical field's values into `columns`; returns the unseen-category flags, or None when a
    value breaks a rule (no verdict: check record by record)."""
    unseen: list[dict] = []
    for name, values in zip(categorical, by_field, strict=False):
        seen = set(values)
        if None in seen:
            if name in rules.not_null:
                return None
            seen.discard(None)
        if not seen <= rules.categorical[name]:
            if rules.unseen_category == "refuse" or not all(type(v) is str for v in seen):
                return None
            known = rules.categorical[name]
            unseen += [
                unseen_flag(i, name, v) for i, v in enumerate(values) if v is not None and v not in known
            ]
        columns[name] = list(values)
    return unseen


def _in_record_order(flags: list[dict], fields: list[str]) -> list[dict]:
    """Flags as check_record gives them: by record, then in the order of the fields."""
    at = {name: k for k, name in enumerate(fields)}
    return sorted(flags, key=lambda f: (f["record"], at[f["field"]]))


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
