"""/predict's work, as the service's worker threads run it (`serving.workers`): the body parsed and judged
against the training profile, the model run, the log rows handed to the prediction log and the answer's JSON
made; the event loop only awaits the log's durability before giving the answer."""

from __future__ import annotations

import asyncio
import threading
import time
import uuid
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from functools import partial

import numpy as np
import pandas as pd
from fastapi.responses import JSONResponse, Response

from mlpipe.model.outputs import labels_from, scores, summary_score
from mlpipe.serving import replies
from mlpipe.serving.body import BodyRefused, parse_json
from mlpipe.serving.metrics import Metrics
from mlpipe.serving.prediction_log import PredictionLog, inputs_json, log_rows
from mlpipe.serving.request_rules import RequestRules, Verdict, all_or_nothing, judge_records
from mlpipe.serving.served import ServeConfig, Served

ENCODE_BESIDE_MIN_RECORDS = 64  # fewer: handing the records to another thread costs more than it saves

_single_thread = threading.local()


def one_openmp_thread() -> None:
    """Limit OpenMP to one thread in the calling thread (OpenMP's setting is per thread; done once per thread,
    after scikit-learn has loaded it).
    HistGradientBoosting opens a parallel region per tree (200 per predict);
    when the other core is busy, each region waits for its second thread: 450 ms instead of 5 ms for one row,
    measured on this shared 2-core machine. Predictions do not change."""
    if not getattr(_single_thread, "done", False):
        from threadpoolctl import ThreadpoolController

        openmp = ThreadpoolController().select(user_api="openmp")
        openmp.limit(limits=1)
        _single_thread.done = bool(openmp.lib_controllers)


def request_frame(
    records: list, columns: dict | None, features: list[str], rules: RequestRules
) -> pd.DataFrame:
    """The model's input frame: from the checked columns when they hold every feature, else from the records;
    the same frame either way (numerical features float64, NaN for null)."""
    if columns is not None and all(c in columns for c in features):
        return pd.DataFrame({c: columns[c] for c in features})
    frame = pd.DataFrame.from_records(records, columns=features)
    for col in rules.numerical:
        frame[col] = frame[col].astype("float64")
    return frame


def columns_of(records: list[dict], rules: RequestRules) -> dict:
    """The checked records a field at a time, as `request_frame` takes them (numerical: float64, NaN for
    null)."""
    columns: dict = {c: [r.get(c) for r in records] for c in rules.categorical}
    for c in rules.numerical:
        columns[c] = np.array([r.get(c) for r in records], dtype=np.float64)
    return columns


def model_scores(served: Served, records: list, columns: dict | None, features: list[str]) -> np.ndarray:
    """The model's scores of the answered records: from their columns by the compiled scorer when the model
    has one (serving.fast_scores), else through the pipeline on the request's frame."""
    if served.scorer is not None:
        return served.scorer(
            columns if columns is not None else columns_of(records, served.rules), len(records)
        )
    return scores(served.model, request_frame(records, columns, features, served.rules))


def answer_body(task: str, classes: list, out: np.ndarray, answers: np.ndarray) -> dict:
    """What /predict answers per task: the class and P(positive) (binary), the class and one probability
    per class (multiclass), the value (regression)."""
    if task == "regression":
        return {"predictions": out.tolist()}
    if task == "multiclass":
        names = [str(c) for c in classes]
        rounded = np.round(out, 6).tolist()
        return {
            "predictions": answers.tolist(),
            "probabilities": [dict(zip(names, r, strict=True)) for r in rounded],
        }
    return {"predictions": answers.tolist(), "probabilities": np.round(out, 6).tolist()}


def predict_answer(
    request_id: str, served: Served, out: np.ndarray, answers: np.ndarray, verdict: Verdict
) -> dict:
    """The 200 body of /predict: one answer per record of the request (None for a refused record), the flags
    of the answered ones, the refused records' broken rules and the counts. JSON types only: FastAPI's encoder
    walk (~1 ms per 1k rows) would give back the same content."""
    answered = answer_body(served.task, served.classes, out, answers)
    return {
        "request_id": request_id,
        "model": {"name": served.name, "version": served.version, "run_id": served.run_id},
        **{k: verdict.per_record(v) for k, v in answered.items()},
        "flags": verdict.flags,
        "refused": verdict.problems,
        "counts": verdict.counts(),
    }


def rows_with(inputs: Future, *args, **kwargs) -> list[dict]:
    """log_rows with the inputs' JSON encoded beside the prediction (`inputs`: inputs_json's future)."""
    return log_rows(*args, **kwargs, inputs=inputs.result())


@dataclass(frozen=True)
class Scored:
    """A /predict answer made but not given yet: it is given once `durable` says its log rows are kept."""

    response: Response
    durable: Future
    served: Served
    answers: np.ndarray


def score_request(
    body: bytes,
    whole_arg: str | None,
    served: Served,
    cfg: ServeConfig,
    log: PredictionLog,
    encoder: ThreadPoolExecutor,
    metrics: Metrics,
    t0: float,
) -> JSONResponse | Scored:
    """A /predict body judged and answered (`whole_arg`: the `all_or_nothing` query value): a refusal, or
    the answer with its log rows queued. Blocking (the model runs here): called in a worker thread."""
    try:  # the body's size is bounded by GuardRequests while it streams in
        payload = parse_json(body)
    except BodyRefused as refusal:
        return replies.refused(refusal)
    records = payload.get("records") if isinstance(payload, dict) and "records" in payload else [payload]
    if not isinstance(records, list) or not records:
        return replies.error(422, "records must be a non-empty list of objects", field_="records")
    if len(records) > cfg.max_records:
        return replies.error(
            413, f"{len(records)} records, over the limit of {cfg.max_records}", field_="records"
        )
    if (whole := all_or_nothing(whole_arg)) is None:
        return replies.error(422, "all_or_nothing must be true or false", field_="all_or_nothing")
    verdict = judge_records(records, served.rules)  # a record that breaks a rule is refused alone
    metrics.count_refusals(verdict)
    if not verdict.answered or (whole and verdict.refused):
        return JSONResponse(status_code=422, content={"detail": verdict.problems})
    records = verdict.taken(records)
    inputs = encoder.submit(inputs_json, records) if len(records) >= ENCODE_BESIDE_MIN_RECORDS else None
    one_openmp_thread()
    out = model_scores(served, records, verdict.columns, cfg.features)
    answers = labels_from(out, served.classes, cfg.threshold)
    summary = summary_score(out)
    request_id = uuid.uuid4().hex
    latency_ms = round((time.perf_counter() - t0) * 1000, 3)
    durable = log.append_later(
        partial(
            log_rows if inputs is None else partial(rows_with, inputs),
            request_id,
            records,
            summary,
            answers,
            verdict.flags,
            served.name,
            served.version,
            latency_ms,
            ts=time.time(),
            rows=verdict.answered,
        )
    )
    response = replies.answer(predict_answer(request_id, served, out, answers, verdict))
    return Scored(response, durable, served, answers)


async def answer_when_logged(scored: JSONResponse | Scored, durable_log: bool, metrics: Metrics) -> Response:
    """The answer, given once its log rows are committed or spooled (with `durable_log`; else at once); a
    503 naming the reason when they cannot be kept (spool full or unwritable): never an answer unlogged."""
    if not isinstance(scored, Scored):
        return scored
    if durable_log:
        try:
            await asyncio.wrap_future(scored.durable)
        except Exception as exc:  # noqa: BLE001 - spool full (or the rows failed): refuse, never answer unlogged
            return replies.log_refusal(str(exc))
    metrics.count_answers(scored.served, scored.answers)
    return scored.response
