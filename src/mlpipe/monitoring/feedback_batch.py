"""Labelled traffic as training data: the logged inputs whose `/feedback` labels came back, and that were
never landed before, written into the landing zone as batches; the retrain flow then judges them as any
batch (validate -> snapshot -> gate).

A batch is `feedback-<first log id>-<last log id>.parquet`: the record's columns (features, the target from
the label, the time column from the logged inputs or else from when the service answered) with data/'s
column types. Which log rows were landed is kept in the prediction log's own database (`landed_feedback`,
keyed by the log row's id), written in the transaction that moves the file into place: a row is landed
once, also with two monitors at once (the second one's insert conflicts and it lands nothing)."""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import pyarrow as pa
import sqlalchemy as sa

from mlpipe.config import Params
from mlpipe.data.zone import FEEDBACK_PREFIX
from mlpipe.serving.prediction_log import FEEDBACK, PREDICTIONS

_META = sa.MetaData()
LANDED = sa.Table(
    "landed_feedback",
    _META,
    sa.Column("prediction_id", sa.Integer, primary_key=True),  # predictions.id of a landed row
    sa.Column("batch", sa.String(200), nullable=False),  # the file it went into
    sa.Column("ts", sa.Float, nullable=False),
)


@dataclass(frozen=True)
class FeedbackBatch:
    """One batch of labelled traffic written into the landing zone."""

    path: Path
    rows: int
    first_id: int
    last_id: int


def _labelled_not_landed():
    """Logged rows with a feedback label and no landed_feedback record, oldest first."""
    return (
        sa.select(PREDICTIONS.c.id, PREDICTIONS.c.ts, PREDICTIONS.c.inputs, FEEDBACK.c.label)
        .select_from(
            PREDICTIONS.join(
                FEEDBACK,
                sa.and_(
                    FEEDBACK.c.request_id == PREDICTIONS.c.request_id, FEEDBACK.c.row == PREDICTIONS.c.row
                ),
            ).outerjoin(LANDED, LANDED.c.prediction_id == PREDICTIONS.c.id)
        )
        .where(LANDED.c.prediction_id.is_(None))
        .order_by(PREDICTIONS.c.id)
    )


def count_not_landed(url: str) -> int:
    """How many logged rows have a feedback label and were not landed yet (nothing is created)."""
    engine = sa.create_engine(url, future=True)
    try:
        with engine.connect() as conn:
            if sa.inspect(conn).has_table(LANDED.name):
                query = _labelled_not_landed().subquery()
            else:
                query = PREDICTIONS.join(
                    FEEDBACK,
                    sa.and_(
                        FEEDBACK.c.request_id == PREDICTIONS.c.request_id,
                        FEEDBACK.c.row == PREDICTIONS.c.row,
                    ),
                )
            return conn.execute(sa.select(sa.func.count()).select_from(query)).scalar_one()
    finally:
        engine.dispose()


def feedback_frame(rows: Sequence, params: Params) -> pd.DataFrame:
    """Logged rows (id, ts, inputs JSON, label text) as records of the project's data (pure): the features as
    the sources type them (text, float64), the target as the label's text, the time column from the inputs
    when they hold it, else the time the service answered (UTC); columns in Params.record_columns order."""
    from mlpipe.data.sources import typed

    dataset, features = params.dataset, params.features
    frame = pd.DataFrame.from_records([json.loads(r.inputs) for r in rows])
    for col in features.columns:  # a feature no logged record holds: null, as the service would log it
        if col not in frame.columns:
            frame[col] = None
    frame[dataset.target] = pd.Series([r.label for r in rows], dtype=object)
    time_col = dataset.time_column
    if time_col and time_col not in frame.columns:
        frame[time_col] = pd.to_datetime([r.ts for r in rows], unit="s", utc=True)
    return typed(frame, dataset, features, "labelled traffic")[params.record_columns].reset_index(drop=True)


def batch_table(frame: pd.DataFrame, schema: pa.Schema | None, time_format: str, name: str) -> pa.Table:
    """The frame as Arrow with data/'s column types where data/ has the column (the target's label text
    parsed into data/'s type); a value that does not convert is left as it is, and the landing check
    refuses the batch naming the rule, as for any batch."""
    from mlpipe.data.landing import conform_table

    table = pa.Table.from_pandas(frame, preserve_index=False)
    return conform_table(table, schema, time_format, name)[0]


def free_name(first: int, last: int, taken_in: Sequence[Path]) -> str:
    """`feedback-<first>-<last>.parquet`, or with `.N` before the suffix when a file of that name is already
    in one of `taken_in` (a log started afresh numbers its rows from 1 again): data/ is never overwritten."""
    from mlpipe.data.landing import data_name

    stem, n = f"{FEEDBACK_PREFIX}{first}-{last}", 0
    while True:
        name = f"{stem}.parquet" if not n else f"{stem}.{n}.parquet"
        if not any((d / name).exists() or (d / data_name(Path(name))).exists() for d in taken_in):
            return name
        n += 1


def land_feedback(
    url: str, params: Params, landing_dir: Path, data_dir: Path, quarantine_dir: Path
) -> list[FeedbackBatch]:
    """Write every labelled logged row not landed before into `landing_dir`, as batches of at most
    retrain.chunk_rows rows (and retrain.max_batch_rows), oldest first; record their ids in the same
    transaction that moves each file into place. Returns the batches written (none: nothing to land)."""
    from mlpipe.data.frames import write_table
    from mlpipe.data.landing import data_schema

    limit = min(params.retrain.chunk_rows, params.retrain.max_batch_rows)
    schema = data_schema(data_dir)
    landing_dir.mkdir(parents=True, exist_ok=True)
    engine = sa.create_engine(url, future=True)
    written: list[FeedbackBatch] = []
    try:
        LANDED.create(engine, checkfirst=True)
        while True:
            with engine.connect() as conn:
                found = conn.execute(_labelled_not_landed().limit(limit)).all()
            if not found:
                break
            rows = list({r.id: r for r in found}.values())  # one row per log id, whatever feedback holds
            first, last = rows[0].id, rows[-1].id
            name = free_name(first, last, [landing_dir, data_dir, quarantine_dir])
            tmp, dest = landing_dir / f".{name}.part", landing_dir / name
            write_table(
                batch_table(feedback_frame(rows, params), schema, params.dataset.time_format, name), tmp
            )
            try:
                with engine.begin() as conn:
                    now = time.time()
                    conn.execute(
                        LANDED.insert(), [{"prediction_id": r.id, "batch": name, "ts": now} for r in rows]
                    )
                    tmp.replace(dest)  # inside the transaction: a failed commit takes the file back out
            except sa.exc.IntegrityError:  # another monitor landed these rows meanwhile
                dest.unlink(missing_ok=True)
                break
            except BaseException:
                dest.unlink(missing_ok=True)
                raise
            finally:
                tmp.unlink(missing_ok=True)
            written.append(FeedbackBatch(dest, len(rows), first, last))
    finally:
        engine.dispose()
    return written
