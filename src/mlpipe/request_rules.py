"""Checking prediction requests against the training profile and the `validate` rules, before the
model sees them. The same profile (`artifacts/validate/profile.json`) and range rules the `validate`
stage uses: missing or unknown fields, wrong types, NaN/Infinity, categories never seen in training
and physically impossible values are refused (422, each field, value and rule listed); values outside
the training range but physically possible are accepted and flagged. Pure functions, no I/O."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

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
    if isinstance(value, str) and len(value) > 80:
        return value[:77] + "..."
    return value


def check_record(i: int, record: object, rules: RequestRules) -> tuple[list[Problem], list[dict]]:
    """(problems that refuse the record, flags for accepted out-of-training-range values)."""
    if not isinstance(record, dict):
        return [Problem(i, "<record>", _short(str(record)), "must be a JSON object of feature: value", "not_an_object")], []
    problems, flags = [], []
    for name in sorted(set(record) - set(rules.fields)):
        problems.append(Problem(i, name, _short(record[name]), "unknown field (not a model feature)", "unknown_field"))
    for name in rules.fields:
        if name not in record:
            problems.append(Problem(i, name, None, "missing field (send null for an unknown value where allowed)", "missing_field"))
            continue
        value = record[name]
        if value is None:
            if name in rules.not_null:
                problems.append(Problem(i, name, None, "null where none are allowed", "null"))
            continue
        if name in rules.categorical:
            if not isinstance(value, str):
                problems.append(Problem(i, name, _short(value), "wrong type: expected a string", "wrong_type"))
            elif value not in rules.categorical[name]:
                problems.append(Problem(i, name, _short(value), "category never seen in training", "unseen_category"))
            continue
        if isinstance(value, bool) or not isinstance(value, int | float):
            problems.append(Problem(i, name, _short(value), "wrong type: expected a number", "wrong_type"))
            continue
        if not math.isfinite(value):
            problems.append(Problem(i, name, str(value), "not a finite number (NaN/Infinity)", "not_finite"))
            continue
        lo, hi = rules.physical.get(name, (None, None))
        if lo is not None and value < lo:
            problems.append(Problem(i, name, value, f"below min {lo} (physically impossible)", "physically_impossible"))
            continue
        if hi is not None and value > hi:
            problems.append(Problem(i, name, value, f"above max {hi} (physically impossible)", "physically_impossible"))
            continue
        tmin, tmax = rules.numerical[name]
        if (tmin is not None and value < tmin) or (tmax is not None and value > tmax):
            flags.append({"record": i, "field": name, "value": value, "training_min": tmin, "training_max": tmax,
                          "rule": "outside the training range (accepted)"})
    return problems, flags


def check_request(records: list, rules: RequestRules) -> tuple[list[dict], list[dict]]:
    """(problems as dicts, flags) for a batch of records."""
    problems, flags = [], []
    for i, record in enumerate(records):
        p, f = check_record(i, record, rules)
        problems += p
        flags += f
    return [asdict(p) for p in problems], flags
