"""Live monitoring: the prediction log's newest window against the served model's training data.

Input drift (Evidently DataDriftPreset on the features), prediction drift (the same on the predicted
probability, reference = the model's own probabilities on its training sample), performance where
feedback labels exist, and the decision: retrain (drift, or a metric drop) and retire (a metric below
the floor). Large logs are sampled *in the database* by a deterministic id stride, so the monitor
reads and parses only the rows Evidently will see. A sampled score close to its threshold may fall on
the other side on the whole window; `column_verdicts` names such columns borderline, `decision_at_stake`
says whether they could change the decision, and `confirm_borderline` asks Evidently again on every
row of the window for exactly those columns (bench/monitor.py measures both)."""

from __future__ import annotations

import json
import math
import operator
from contextlib import closing

import pandas as pd
import sqlalchemy as sa

from mlpipe.config import FeaturesCfg, MonitorCfg, Task
from mlpipe.errors import ConfigError
from mlpipe.serving.prediction_log import FEEDBACK, PREDICTIONS

PROBA = "proba"
# How Evidently 0.7 turns the score of each method it picks by default into a column's drift flag
# (evidently/legacy/calculations/stattests/*.py): p-values drift below the threshold, distances at or above.
DRIFTED_WHEN = {
    "K-S p_value": operator.le,
    "chi-square p_value": operator.lt,
    "Z-test p_value": operator.lt,
    "Jensen-Shannon distance": operator.ge,
    "Wasserstein distance (normed)": operator.ge,
}
# A distance within this share of its threshold is borderline: 20k sampled rows against a 20k reference
# moved the normed Wasserstein distance of 1M-row windows by up to 0.017 (17% of its 0.1 threshold).
BORDERLINE = 0.25


def count_window(conn, low: int, top: int) -> int:
    """Logged rows with low < id <= top. Counting an id range walks its rows (SQLite: ~1 s for 10M), while
    a whole-table count(*) walks the smallest index (~0.05 s for 10M, ~15x fewer bytes): when the table
    is more than 16x the window, count the range; else count the table, and when its ids have no gaps
    (count == max - min + 1) the window's count follows from its ids."""
    first = conn.execute(sa.select(sa.func.min(PREDICTIONS.c.id))).scalar_one()
    if (top - low) * 16 >= top - first + 1:
        total = conn.execute(sa.select(sa.func.count()).select_from(PREDICTIONS)).scalar_one()
        if total == top - first + 1:
            return top - max(low, first - 1)
    return conn.execute(sa.select(sa.func.count()).where(PREDICTIONS.c.id > low)).scalar_one()


def read_window(
    url: str, window_rows: int, sample_rows: int, model_version: str | None = None
) -> tuple[pd.DataFrame, int]:
    """(sampled rows of the newest `window_rows`, rows in the window), only `model_version`'s rows when given
    (filtered in the database). One row per logged prediction: its inputs as columns, proba, prediction,
    model_version, and label when feedback arrived. The sample is every row whose id is a multiple of a
    stride; for the whole window fetched by id (a generated series joined on the primary key), for one
    version through the log's (model_version, id) index: either way its cost follows the sample (and the
    version's rows), not the window."""
    engine = sa.create_engine(url, future=True)
    try:
        with engine.connect() as conn:
            top = conn.execute(sa.select(sa.func.max(PREDICTIONS.c.id))).scalar()
            if top is None:
                return _window_frame([]), 0
            low = max(0, top - window_rows)
            if model_version is None:
                in_window = count_window(conn, low, top)
                ids = stride_ids(low, top, max(1, math.ceil(in_window / sample_rows)))
                source, keep = ids.join(PREDICTIONS, PREDICTIONS.c.id == ids.c.id), sa.true()
            else:
                mine = sa.and_(PREDICTIONS.c.model_version == model_version, PREDICTIONS.c.id > low)
                in_window = conn.execute(sa.select(sa.func.count()).where(mine)).scalar_one()
                if not in_window:
                    return _window_frame([]), 0
                stride = max(1, math.ceil(in_window / sample_rows))
                source, keep = PREDICTIONS, sa.and_(mine, PREDICTIONS.c.id % stride == 0)
            q = (
                sa.select(
                    PREDICTIONS.c.id,
                    PREDICTIONS.c.ts,
                    PREDICTIONS.c.inputs,
                    PREDICTIONS.c.proba,
                    PREDICTIONS.c.prediction,
                    PREDICTIONS.c.model_version,
                    FEEDBACK.c.label,
                )
                .select_from(
                    source.outerjoin(
                        FEEDBACK,
                        sa.and_(
                            FEEDBACK.c.request_id == PREDICTIONS.c.request_id,
                            FEEDBACK.c.row == PREDICTIONS.c.row,
                        ),
                    )
                )
                .where(keep)
                .order_by(PREDICTIONS.c.id)
            )
            rows = conn.execute(q).all()
    finally:
        engine.dispose()
    return _window_frame(rows), in_window


def stride_ids(low: int, top: int, stride: int):
    """The ids low < id <= top with id % stride == 0, smallest first, generated in the database (a recursive
    CTE): joined on the primary key, they fetch a stride sample without walking the rows between."""
    ids = sa.select(sa.literal((low // stride + 1) * stride).label("id")).cte("ids", recursive=True)
    return ids.union_all(sa.select((ids.c.id + stride).label("id")).where(ids.c.id + stride <= top))


def _window_frame(rows) -> pd.DataFrame:
    """Logged rows as the monitor's frame: the inputs as columns, then proba, prediction, model_version,
    label and the time the service answered."""
    frame = pd.DataFrame.from_records([json.loads(r.inputs) for r in rows])
    frame[PROBA] = [r.proba for r in rows]
    frame["prediction"] = [r.prediction for r in rows]
    frame["model_version"] = [r.model_version for r in rows]
    frame["label"] = [r.label for r in rows]
    frame[LOGGED_AT] = pd.to_datetime([r.ts for r in rows], unit="s", utc=True)
    return frame


def window_versions(url: str, window_rows: int, sample_rows: int) -> tuple[list[str], int]:
    """(the model versions of the newest `window_rows` rows, rows in the window): the versions among the rows
    read_window samples (ids a multiple of its stride; no inputs read), so a version with fewer rows than
    the stride may be missed; every version when the window is no larger than `sample_rows`."""
    engine = sa.create_engine(url, future=True)
    try:
        with engine.connect() as conn:
            top = conn.execute(sa.select(sa.func.max(PREDICTIONS.c.id))).scalar()
            if top is None:
                return [], 0
            low = max(0, top - window_rows)
            in_window = count_window(conn, low, top)
            ids = stride_ids(low, top, max(1, math.ceil(in_window / sample_rows)))
            found = conn.execute(
                sa.select(PREDICTIONS.c.model_version)
                .select_from(ids.join(PREDICTIONS, PREDICTIONS.c.id == ids.c.id))
                .distinct()
            )
            return sorted(found.scalars(), key=version_order), in_window
    finally:
        engine.dispose()


def version_order(version: str) -> tuple:
    """Registry versions in number order (2 before 10); any other text after them, by its text."""
    return (0, int(version), "") if version.isdigit() else (1, 0, version)


LOGGED_AT = "logged_at"  # when the service answered the row (the window's own period)


def drift_summaries(reference: pd.DataFrame, current: pd.DataFrame, features: FeaturesCfg):
    """(input drift summary, prediction drift summary, the input snapshot for the HTML report); each summary
    also carries its per-column `verdicts` (see column_verdicts)."""
    from evidently import DataDefinition, Dataset, Report
    from evidently.presets import DataDriftPreset

    from mlpipe.monitoring.drift import drift_report, drift_summary

    inputs = drift_report(reference, current, features)
    defn = DataDefinition(numerical_columns=[PROBA])
    pred = Report([DataDriftPreset()]).run(
        current_data=Dataset.from_pandas(current[[PROBA]], data_definition=defn),
        reference_data=Dataset.from_pandas(reference[[PROBA]], data_definition=defn),
    )
    summaries = []
    for snapshot in (inputs, pred):
        raw = snapshot.dict()
        summaries.append(drift_summary(raw) | {"verdicts": column_verdicts(raw)})
    return summaries[0], summaries[1], inputs


def live_performance(
    window: pd.DataFrame, threshold: float, min_labels: int, task: Task, classes: list | None = None
) -> dict | None:
    """The task's metrics on the rows that have feedback labels, or None with too few labels or one
    class only. Multiclass rows carry their answered class only (no per-class probabilities): accuracy,
    balanced accuracy and F1."""
    from mlpipe.pipeline.evaluate import compute_metrics, regression_metrics

    labelled = window.dropna(subset=["label"])
    if len(labelled) < min_labels or labelled["label"].nunique() < 2:
        return None
    if task == "regression":
        return regression_metrics(labelled["label"].astype(float).to_numpy(), labelled[PROBA].to_numpy())
    if task == "multiclass":
        from sklearn import metrics as skm

        y, pred = labelled["label"].astype(str), labelled["prediction"].astype(str)
        return {
            "accuracy": round(float(skm.accuracy_score(y, pred)), 6),
            "balanced_accuracy": round(float(skm.balanced_accuracy_score(y, pred)), 6),
            "f1_macro": round(float(skm.f1_score(y, pred, average="macro", zero_division=0)), 6),
            "f1_weighted": round(float(skm.f1_score(y, pred, average="weighted", zero_division=0)), 6),
            "n_test": int(len(y)),
        }
    classes = [str(c) for c in (classes or [0, 1])]
    y = (labelled["label"].astype(str) == classes[1]).astype(int).to_numpy()
    return compute_metrics(y, labelled[PROBA].to_numpy(), threshold)


def monitor_verdict(
    cfg: MonitorCfg,
    rows: int,
    input_drift: dict | None,
    prediction_drift: dict | None,
    live: dict | None,
    trained: dict,
    metric: str,
    own: str | None = None,
) -> dict:
    """The monitor's verdict (pure): retrain and/or retire, with every reason spelled out. `rows` are the
    judged model's own logged rows, `own` says so in words (versions_line); `metric` is the task's monitored
    metric (Params.monitor_metric); lower-is-better metrics are judged the other way."""
    from mlpipe.config import lower_is_better

    reasons, retire = [], False
    if rows < cfg.min_rows:
        said = own or f"only {rows} logged rows"
        return {
            "retrain": False,
            "retire": False,
            "judged": False,
            "reasons": [f"{said}, under monitor.min_rows {cfg.min_rows}: no verdict yet"],
        }
    share = (input_drift or {}).get("drift_share")
    if share is not None and share > cfg.drift_share_max:
        reasons.append(f"input drift share {share} > monitor.drift_share_max {cfg.drift_share_max}")
    if cfg.prediction_drift and (prediction_drift or {}).get("drift_share"):
        reasons.append(f"prediction drift (score {prediction_drift['columns'].get(PROBA)})")
    if live is not None and metric in live:
        sign = -1.0 if lower_is_better(metric) else 1.0  # worse = lower (higher for an error metric)
        value, base = live[metric], trained.get(metric)
        moved, under = ("rose more than {} above", ">") if sign < 0 else ("dropped more than {} below", "<")
        if cfg.floor is not None and sign * value < sign * cfg.floor:
            retire = True
            reasons.append(
                f"live {metric} {round(value, 4)} {under} monitor.floor {cfg.floor}: retire this model"
            )
        elif base is not None and sign * value < sign * base - cfg.max_drop:
            reasons.append(f"live {metric} {round(value, 4)} {moved.format(cfg.max_drop)} training {base}")
    return {"retrain": bool(reasons), "retire": retire, "judged": True, "reasons": reasons}


def reference_sample(train: pd.DataFrame, model, features: FeaturesCfg, rows: int, seed: int) -> pd.DataFrame:
    """A seeded sample of the training split with the model's own probabilities on it."""
    ref = train.sample(n=min(rows, len(train)), random_state=seed)[list(features.columns)].reset_index(
        drop=True
    )
    from mlpipe.model.outputs import scores, summary_score

    ref[PROBA] = summary_score(scores(model, ref[list(model.feature_names_in_)]))
    return ref


def coerce_like(current: pd.DataFrame, reference: pd.DataFrame, features: FeaturesCfg) -> pd.DataFrame:
    """Logged JSON inputs with the reference's column types (numbers as float, categories as str)."""
    out = current.copy()
    for col in features.numerical:
        out[col] = pd.to_numeric(out[col], errors="coerce").astype("float64")
    for col in features.categorical:
        out[col] = out[col].astype(object).where(out[col].notna(), None)
    out[PROBA] = out[PROBA].astype("float64")
    return out


def column_verdicts(snapshot_dict: dict, margin: float = BORDERLINE) -> dict[str, dict]:
    """{column: {method, threshold, score, drifted, borderline}} from the ValueDrift metrics of a snapshot's
    dict(). P-values shrink as rows grow, so a p-value verdict on a sample is always borderline."""
    out = {}
    for metric in snapshot_dict.get("metrics", []):
        cfg = metric.get("config", {})
        if not cfg.get("type", "").endswith(":ValueDrift"):
            continue
        rule = DRIFTED_WHEN.get(cfg["method"])
        if rule is None:
            raise ConfigError(
                f"{cfg['column']}: drift method {cfg['method']!r} has no verdict rule (rule: DRIFTED_WHEN "
                "lists the methods Evidently picks by default)"
            )
        score, threshold = float(metric["value"]), float(cfg["threshold"])
        near = rule is not operator.ge or abs(score - threshold) <= margin * threshold
        out[cfg["column"]] = {
            "method": cfg["method"],
            "threshold": threshold,
            "score": round(score, 6),
            "drifted": bool(rule(score, threshold)),
            "borderline": near,
        }
    return out


def summaries_from_verdicts(verdicts: dict[str, dict], features: FeaturesCfg) -> tuple[dict, dict]:
    """(input drift summary, prediction drift summary) as drift_summaries gives them, from per-column
    verdicts."""
    out = []
    for names in ([c for c in features.columns if c in verdicts], [c for c in (PROBA,) if c in verdicts]):
        drifted = sum(verdicts[c]["drifted"] for c in names)
        out.append(
            {
                "drifted_columns": drifted,
                "drift_share": round(drifted / len(names), 6) if names else None,
                "columns": {c: verdicts[c]["score"] for c in names},
                "verdicts": {c: verdicts[c] for c in names},
            }
        )
    return out[0], out[1]


def decision_at_stake(
    cfg: MonitorCfg,
    rows: int,
    verdicts: dict[str, dict],
    features: FeaturesCfg,
    live: dict | None,
    trained: dict,
    metric: str,
) -> bool:
    """True when the borderline columns, drifted or not, could change whether the monitor retrains."""
    calm = {c: v | {"drifted": v["drifted"] and not v["borderline"]} for c, v in verdicts.items()}
    alarmed = {c: v | {"drifted": v["drifted"] or v["borderline"]} for c, v in verdicts.items()}
    low = monitor_verdict(cfg, rows, *summaries_from_verdicts(calm, features), live, trained, metric)
    high = monitor_verdict(cfg, rows, *summaries_from_verdicts(alarmed, features), live, trained, metric)
    return low["retrain"] != high["retrain"]


def _input_value(dialect: str, key: str):
    """One key of the logged inputs JSON, extracted by the database."""
    if dialect == "postgresql":
        from sqlalchemy.dialects.postgresql import JSONB

        return sa.cast(PREDICTIONS.c.inputs, JSONB)[key].astext
    return sa.func.json_extract(PREDICTIONS.c.inputs, f"$.{key}")


def read_columns(
    url: str,
    window_rows: int,
    columns: list[str],
    features: FeaturesCfg,
    chunk_rows: int = 100_000,
    model_version: str | None = None,
) -> pd.DataFrame:
    """Every row of the newest `window_rows` (only `model_version`'s when given), only `columns` (input keys
    or proba), extracted in the database (no JSON parsed in Python) and typed as coerce_like types them."""
    engine = sa.create_engine(url, future=True)
    parts = []
    try:
        with engine.connect() as conn:
            top = conn.execute(sa.select(sa.func.max(PREDICTIONS.c.id))).scalar() or 0
            exprs = [
                PREDICTIONS.c.proba if c == PROBA else _input_value(engine.dialect.name, c).label(c)
                for c in columns
            ]
            query = sa.select(*exprs).where(PREDICTIONS.c.id > max(0, int(top) - int(window_rows)))
            if model_version is not None:
                query = query.where(PREDICTIONS.c.model_version == str(model_version))
            # The driver's own cursor hands back plain tuples: SQLAlchemy's Row objects took a third of
            # the time on 1M rows. Literal binds are safe here: an int, the configured column names and a
            # registry version (quoted by SQLAlchemy).
            with closing(conn.connection.cursor()) as cursor:
                cursor.execute(
                    str(query.compile(dialect=engine.dialect, compile_kwargs={"literal_binds": True}))
                )
                while chunk := cursor.fetchmany(chunk_rows):
                    part = pd.DataFrame.from_records(chunk, columns=columns)
                    for (
                        col
                    ) in columns:  # typed per chunk: a column of Python objects would hold 4x the memory
                        if col == PROBA or col in features.numerical:
                            part[col] = pd.to_numeric(part[col], errors="coerce").astype("float64")
                        else:
                            part[col] = part[col].astype(object).where(part[col].notna(), None)
                    parts.append(part)
    finally:
        engine.dispose()
    return pd.concat(parts, ignore_index=True) if parts else pd.DataFrame(columns=columns)


def evidently_column_verdict(reference: pd.Series, current: pd.Series, categorical: bool) -> dict:
    """Evidently's own verdict on one column, as its ValueDrift metric reaches it inside a Report
    (evidently.legacy.calculations.data_drift.get_one_column_drift): infinities and nulls dropped, the
    default method picked for the column's type and rows, that method's threshold. Without the Report's
    histograms, correlations and widgets, which on 10M rows cost ~10x the test itself and ~0.5 GB a column."""
    import numpy as np
    from evidently.legacy.calculations.stattests.registry import get_stattest
    from evidently.legacy.core import ColumnType

    kind = ColumnType.Categorical if categorical else ColumnType.Numerical
    ref = reference.replace([-np.inf, np.inf], np.nan).dropna()
    cur = current.replace([-np.inf, np.inf], np.nan).dropna()
    if ref.empty or cur.empty:
        raise ConfigError(
            f"{reference.name}: no value left to compare in the {'reference' if ref.empty else 'window'} "
            "(rule: Evidently drops nulls and infinities before its drift test)"
        )
    test = get_stattest(ref, cur, kind, None)
    result = test(ref, cur, kind, None)
    return {
        "method": test.display_name,
        "threshold": float(result.actual_threshold),
        "score": round(float(result.drift_score), 6),
        "drifted": bool(result.drifted),
        "borderline": False,
        "confirmed": True,
    }


def confirm_borderline(
    url: str,
    window_rows: int,
    whole_reference: pd.DataFrame,
    verdicts: dict[str, dict],
    features: FeaturesCfg,
    model_version: str | None = None,
) -> dict[str, dict]:
    """`verdicts` with each borderline column's verdict replaced by Evidently's on every row of the window
    (`model_version`'s rows when given) against the whole reference (the training split with the model's
    probabilities): what Evidently on the full data says, for exactly the columns where the sample may not
    say the same."""
    columns = [c for c, v in verdicts.items() if v["borderline"]]
    if not columns:
        return verdicts
    whole = read_columns(url, window_rows, columns, features, model_version=model_version)
    confirmed = {}
    for c in columns:
        confirmed[c] = evidently_column_verdict(whole_reference[c], whole.pop(c), c in features.categorical)
    return verdicts | confirmed
