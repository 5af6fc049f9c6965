"""Measurement: does time passing alone look like drift? The model's features with and without the
calendar position (`month`, `day`), on months after the training period.

For each feature list, against the training split of the last `mlpipe run` (artifacts/split/train.parquet):
- the drift share Evidently's DataDriftPreset gives (the project's own `drift_report`, rows capped at
  `retrain.drift_max_rows` as the retrain flow caps them), and which columns drifted, for the newest
  batch in data/ (the report `mlpipe run` writes), April (the next month: "stable") and July and
  December (changed: July is 82F against the winter training months, December is the latest month
  with the highest late rate);
- how many April flights the service would flag as outside the training range (the request rules of
  serving/request_rules.py over the training profile of data/, as the validate stage computes it).
Needs `make run` first (data/ and the split). Writes bench/results/calendar_drift.json.
Usage: python bench/calendar_drift.py
"""

from __future__ import annotations

import sys
from collections import Counter
from datetime import date
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from pipeline import REPO, report  # noqa: E402

CALENDAR = ["month", "day"]  # position in the year / month: out of range after any window under a year
MONTHS = {
    "Apr 2013 (next month, stable)": (date(2013, 4, 1), date(2013, 5, 1)),
    "Jul 2013 (summer, changed)": (date(2013, 7, 1), date(2013, 8, 1)),
    "Dec 2013 (winter again, late rate 32.6%)": (date(2013, 12, 1), date(2014, 1, 1)),
}
FLAGGED_MONTH = "Apr 2013 (next month, stable)"


def variants(params) -> dict:
    """{name: Params} with the calendar columns as features and without them (the rest as configured)."""
    from mlpipe.config import FeaturesCfg

    base = [c for c in params.features.numerical if c not in CALENDAR]
    at = base.index("weekday") + 1 if "weekday" in base else len(base)
    lists = {"with month, day": [*base[:at], *CALENDAR, *base[at:]], "without month, day": base}
    return {
        name: params.model_copy(
            update={"features": FeaturesCfg(**(params.features.model_dump() | {"numerical": numerical}))}
        )
        for name, numerical in lists.items()
    }


def drift_of(reference, current, params) -> dict:
    """Drift share and drifted columns of `current` against `reference`, as the retrain flow's report."""
    from mlpipe.monitoring.drift import drift_report, drift_summary, stride_sample
    from mlpipe.monitoring.monitor import column_verdicts

    cap = params.retrain.drift_max_rows
    raw = drift_report(stride_sample(reference, cap), stride_sample(current, cap), params.features).dict()
    verdicts = column_verdicts(raw)
    return drift_summary(raw)["drift_share"], sorted(c for c, v in verdicts.items() if v["drifted"])


def flagged(frame, profile: dict, params) -> dict:
    """Rows with at least one field outside the training range (accepted and flagged), flags per field,
    and rows refused (e.g. a destination never seen in training), as the service checks each row."""
    from mlpipe.serving.request_rules import check_request, rules_from

    rules = rules_from(profile, params)
    cols = params.features.columns
    records = frame[cols].astype(object).where(frame[cols].notna(), None).to_dict(orient="records")
    problems, flags = check_request(records, rules)
    return {
        "rows": len(records),
        "flagged": len({f["record"] for f in flags}),
        "flags_per_field": dict(Counter(f["field"] for f in flags).most_common()),
        "refused": len({p["record"] for p in problems}),
        "refused_per_rule": dict(Counter(f"{p['field']}: {p['rule']}" for p in problems).most_common()),
    }


def main() -> int:
    from mlpipe.config import ProjectPaths, load_params
    from mlpipe.data.frames import data_files, read_data_dir, read_frame
    from mlpipe.data.sources import get_source
    from mlpipe.data.validation import profile_frame

    paths = ProjectPaths(REPO)
    params = load_params(REPO / "params.yaml")
    train = read_frame(paths.train_split)
    newest = data_files(paths.data)[-1]
    load = get_source(params, REPO)
    currents = {f"data/{newest.name} (the run's own report)": read_frame(newest)}
    currents |= {name: load(start, end) for name, (start, end) in MONTHS.items()}
    figures: dict = {"train_split_rows": len(train), "rows": {k: len(v) for k, v in currents.items()}}
    for name, variant in variants(params).items():
        profile = profile_frame(
            read_data_dir(paths.data, columns=list(dict.fromkeys(variant.record_columns))), variant
        )
        figures[name] = {
            "features": variant.features.columns,
            "drift": {
                month: dict(zip(("drift_share", "drifted"), drift_of(train, cur, variant), strict=True))
                for month, cur in currents.items()
            },
            "april_requests": flagged(currents[FLAGGED_MONTH], profile, variant),
        }
    report(figures, "calendar_drift.json")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
