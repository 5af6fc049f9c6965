"""Live monitoring: the prediction log's newest window against the served model's training data.

Input drift (Evidently DataDriftPreset on the features), prediction drift (the same on the predicted
probability, reference = the model's own probabilities on its training sample), performance where
feedback labels exist, and the decision: retrain (drift, or a metric drop) and retire (a metric below
the floor). Large logs are sampled *in the database* by a deterministic id stride, so the monitor
reads and parses only the rows Evidently will see."""

from __future__ import annotations

import json
import math

import pandas as pd
import sqlalchemy as sa

from mlpipe.config import FeaturesCfg, MonitorCfg
from mlpipe.predlog import FEEDBACK, PREDICTIONS

PROBA = "proba"


def read_window(url: str, window_rows: int, sample_rows: int) -> tuple[pd.DataFrame, int]:
    """(sampled rows of the newest `window_rows`, rows in the window). One row per logged prediction:
    its inputs as columns, proba, prediction, model_version, and label when feedback arrived."""
    engine = sa.create_engine(url, future=True)
    try:
        with engine.connect() as conn:
            top = conn.execute(sa.select(sa.func.max(PREDICTIONS.c.id))).scalar()
            if top is None:
                return pd.DataFrame(), 0
            low = max(0, top - window_rows)
            in_window = conn.execute(sa.select(sa.func.count()).where(PREDICTIONS.c.id > low)).scalar_one()
            stride = max(1, math.ceil(in_window / sample_rows))
            q = (sa.select(PREDICTIONS.c.id, PREDICTIONS.c.inputs, PREDICTIONS.c.proba, PREDICTIONS.c.prediction,
                           PREDICTIONS.c.model_version, FEEDBACK.c.label)
                 .select_from(PREDICTIONS.outerjoin(FEEDBACK, sa.and_(FEEDBACK.c.request_id == PREDICTIONS.c.request_id,
                                                                     FEEDBACK.c.row == PREDICTIONS.c.row)))
                 .where(PREDICTIONS.c.id > low, PREDICTIONS.c.id % stride == 0)
                 .order_by(PREDICTIONS.c.id))
            rows = conn.execute(q).all()
    finally:
        engine.dispose()
    frame = pd.DataFrame.from_records([json.loads(r.inputs) for r in rows])
    frame[PROBA] = [r.proba for r in rows]
    frame["prediction"] = [r.prediction for r in rows]
    frame["model_version"] = [r.model_version for r in rows]
    frame["label"] = [r.label for r in rows]
    return frame, in_window


def drift_summaries(reference: pd.DataFrame, current: pd.DataFrame, features: FeaturesCfg):
    """(input drift summary, prediction drift summary, the input snapshot for the HTML report)."""
    from evidently import DataDefinition, Dataset, Report
    from evidently.presets import DataDriftPreset

    from mlpipe.drift import drift_report, drift_summary

    inputs = drift_report(reference, current, features)
    defn = DataDefinition(numerical_columns=[PROBA])
    pred = Report([DataDriftPreset()]).run(current_data=Dataset.from_pandas(current[[PROBA]], data_definition=defn),
                                           reference_data=Dataset.from_pandas(reference[[PROBA]], data_definition=defn))
    return drift_summary(inputs.dict()), drift_summary(pred.dict()), inputs


def live_performance(window: pd.DataFrame, threshold: float, min_labels: int) -> dict | None:
    """Metrics on the rows that have feedback labels, or None with too few labels or one class only."""
    from mlpipe.evaluate import compute_metrics

    labelled = window.dropna(subset=["label"])
    if len(labelled) < min_labels or labelled["label"].nunique() < 2:
        return None
    return compute_metrics(labelled["label"].astype(int).to_numpy(), labelled[PROBA].to_numpy(), threshold)


def decide(cfg: MonitorCfg, rows: int, input_drift: dict | None, prediction_drift: dict | None,
           live: dict | None, trained: dict) -> dict:
    """The monitor's verdict (pure): retrain and/or retire, with every reason spelled out."""
    reasons, retire = [], False
    if rows < cfg.min_rows:
        return {"retrain": False, "retire": False, "reasons": [f"only {rows} logged rows (< monitor.min_rows {cfg.min_rows}): no verdict"]}
    share = (input_drift or {}).get("drift_share")
    if share is not None and share > cfg.drift_share_max:
        reasons.append(f"input drift share {share} > monitor.drift_share_max {cfg.drift_share_max}")
    if cfg.prediction_drift and (prediction_drift or {}).get("drift_share"):
        reasons.append(f"prediction drift (score {prediction_drift['columns'].get(PROBA)})")
    if live is not None:
        value, base = live[cfg.metric], trained.get(cfg.metric)
        if value < cfg.floor:
            retire = True
            reasons.append(f"live {cfg.metric} {round(value, 4)} < monitor.floor {cfg.floor}: retire this model")
        elif base is not None and value < base - cfg.max_drop:
            reasons.append(f"live {cfg.metric} {round(value, 4)} dropped more than {cfg.max_drop} below training {base}")
    return {"retrain": bool(reasons), "retire": retire, "reasons": reasons}


def reference_sample(train: pd.DataFrame, model, features: FeaturesCfg, rows: int, seed: int) -> pd.DataFrame:
    """A seeded sample of the training split with the model's own probabilities on it."""
    ref = train.sample(n=min(rows, len(train)), random_state=seed)[list(features.columns)].reset_index(drop=True)
    ref[PROBA] = model.predict_proba(ref[list(model.feature_names_in_)])[:, 1]
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
