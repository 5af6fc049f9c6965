"""The served model's scores straight from the request's checked columns, without a DataFrame.

scikit-learn's ColumnTransformer spends most of a small request in pandas: selecting columns, checking
names and dtypes, once per transformer (a single row of the flights model: ~4 ms of its ~5.5 ms predict;
the trees take ~1 ms). The preprocessing mlpipe's train stage builds (`pipeline.train.preprocessing`) is a
few known, fitted steps: ordinal codes, passthrough, median imputation, standard scaling. Here each is
replayed on numpy arrays with the fitted values and the same float operations, and the estimator gets the
same float64 matrix the pipeline would give it. Anything else (another transformer, a setting replayed
differently, an estimator that checks feature names) compiles to None and the service predicts through the
pipeline as before. A compiled scorer is used only after it gave, bit for bit, the pipeline's own scores on
rows made from the training profile (every category, an unseen one, nulls, the training range's edges)."""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence

import numpy as np
import pandas as pd

from mlpipe.model.outputs import classes_of, scores, task_of
from mlpipe.serving.request_rules import RequestRules

Columns = Mapping[str, Sequence]  # field -> values (categorical: str/None; numerical: float64, NaN for null)
Block = Callable[[Columns, int], np.ndarray]  # the rows x k float64 block of one transformer
Scorer = Callable[[Columns, int], np.ndarray]


def _is_nan(value) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value))


def _ordinal(encoder, fields: list[str]) -> Block | None:
    """OrdinalEncoder(handle_unknown="use_encoded_value"): each category its code, an unknown category
    `unknown_value`, a null `encoded_missing_value`, as float64."""
    from sklearn.preprocessing import OrdinalEncoder

    if type(encoder) is not OrdinalEncoder or encoder.handle_unknown != "use_encoded_value":
        return None
    if np.dtype(encoder.dtype) != np.float64:
        return None
    # a null seen in training is a category of its own (its code), else `encoded_missing_value`
    codes = [_codes(cats) for cats in encoder.categories_]
    unknown, missing = float(encoder.unknown_value), float(encoder.encoded_missing_value)

    def block(columns: Columns, n: int) -> np.ndarray:
        out = np.empty((n, len(fields)), dtype=np.float64)
        for j, (name, known) in enumerate(zip(fields, codes, strict=True)):
            out[:, j] = [known[v] if v in known else missing if v is None else unknown for v in columns[name]]
        return out

    return block


def _codes(categories) -> dict:
    return {c: float(i) for i, c in enumerate(categories) if not (isinstance(c, float) and math.isnan(c))}


def _one_hot(encoder, fields: list[str]) -> Block | None:
    """OneHotEncoder(handle_unknown="ignore"), dense, nothing dropped or grouped: a 1 in the category's
    column, none for an unknown category."""
    from sklearn.preprocessing import OneHotEncoder

    if (
        type(encoder) is not OneHotEncoder
        or encoder.handle_unknown != "ignore"
        or encoder.sparse_output
        or encoder.drop_idx_ is not None
        or getattr(encoder, "_infrequent_enabled", False)
    ):
        return None
    codes = [_codes(cats) for cats in encoder.categories_]
    offsets = np.cumsum([0, *(len(c) for c in encoder.categories_)]).tolist()
    dtype = encoder.dtype

    def block(columns: Columns, n: int) -> np.ndarray:
        out = np.zeros((n, offsets[-1]), dtype=dtype)
        for name, known, at in zip(fields, codes, offsets, strict=False):
            for i, v in enumerate(columns[name]):
                if v in known:
                    out[i, at + int(known[v])] = 1
        return out

    return block


def _numeric_steps(step) -> list[Callable[[np.ndarray], np.ndarray]] | None:
    """In-place replays of a numerical transformer (a passthrough, SimpleImputer(median/mean),
    StandardScaler, or a Pipeline of them); None for anything else."""
    from sklearn.impute import SimpleImputer
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import FunctionTransformer, StandardScaler

    if isinstance(step, str):
        return [] if step == "passthrough" else None
    if type(step) is FunctionTransformer:
        return [] if step.func is None else None
    if type(step) is Pipeline:
        out: list = []
        for _, inner in step.steps:
            found = _numeric_steps(inner)
            if found is None:
                return None
            out += found
        return out
    if type(step) is SimpleImputer:
        stats = np.asarray(step.statistics_, dtype=np.float64)
        if step.add_indicator or not _is_nan(step.missing_values) or np.isnan(stats).any():
            return None

        def impute(x: np.ndarray) -> np.ndarray:
            rows, cols = np.nonzero(np.isnan(x))
            x[rows, cols] = stats[cols]
            return x

        return [impute]
    if type(step) is StandardScaler:
        mean = step.mean_ if step.with_mean else None
        scale = step.scale_ if step.with_std else None

        def standardise(x: np.ndarray) -> np.ndarray:
            if mean is not None:
                x -= mean
            if scale is not None:
                x /= scale
            return x

        return [standardise]
    return None


def _numeric(step, fields: list[str]) -> Block | None:
    replays = _numeric_steps(step)
    if replays is None:
        return None

    def block(columns: Columns, n: int) -> np.ndarray:
        x = np.empty((n, len(fields)), dtype=np.float64)
        for j, name in enumerate(fields):
            x[:, j] = columns[name]
        for replay in replays:
            x = replay(x)
        return x

    return block


def _blocks(transformer, rules: RequestRules) -> list[Block] | None:
    """One Block per output block of a fitted ColumnTransformer, in its output order; None when a step is
    not one of the known ones or reads a field the rules do not give as expected."""
    from sklearn.compose import ColumnTransformer

    if type(transformer) is not ColumnTransformer or transformer.sparse_output_:
        return None
    names = list(getattr(transformer, "feature_names_in_", []))
    blocks: list[Block] = []
    for _, step, cols in transformer.transformers_:
        fields = [names[c] if isinstance(c, int | np.integer) else c for c in np.atleast_1d(cols).tolist()]
        if step == "drop" or not fields:
            continue
        if all(f in rules.categorical for f in fields):
            block = _ordinal(step, fields) or _one_hot(step, fields)
        elif all(f in rules.numerical for f in fields):
            block = _numeric(step, fields)
        else:
            return None
        if block is None:
            return None
        blocks.append(block)
    return blocks


def compile_scorer(model, rules: RequestRules) -> Scorer | None:
    """`scores(model, frame)` as a function of the checked columns, or None when the model is not a
    Pipeline(ColumnTransformer of known steps, estimator fitted on arrays) or the replay differs."""
    from sklearn.pipeline import Pipeline

    if type(model) is not Pipeline or len(model.steps) != 2:
        return None
    estimator = model.steps[1][1]
    blocks = _blocks(model.steps[0][1], rules)
    if not blocks or hasattr(estimator, "feature_names_in_"):
        return None
    task = task_of(model)
    # the matrix in the layout the ColumnTransformer gives (one block from a frame: column-major): a linear
    # model's dot product sums in another order on the other layout, and its last bits differ
    probe = probe_columns(rules, 4)
    made = model.steps[0][1].transform(
        pd.DataFrame({c: probe[c] for c in model.steps[0][1].feature_names_in_})
    )
    fortran = bool(made.flags.f_contiguous and not made.flags.c_contiguous)
    column = None
    if task == "binary":
        column = np.asarray(model.classes_).tolist().index(classes_of(model)[1])

    predict = _boosted_trees(estimator, task) or _public_predict(estimator, task)

    def scorer(columns: Columns, n: int) -> np.ndarray:
        parts = [block(columns, n) for block in blocks]
        x = parts[0] if len(parts) == 1 else np.hstack(parts)
        if fortran:
            x = np.asfortranarray(x)
        out = predict(x)
        return out if column is None else out[:, column]

    try:
        same = _same_scores(model, scorer, rules)
    except Exception:  # noqa: BLE001 - a replay that fails is not used: the pipeline predicts
        return None
    return scorer if same else None


def _public_predict(estimator, task: str) -> Callable[[np.ndarray], np.ndarray]:
    if task == "regression":
        return lambda x: np.asarray(estimator.predict(x), dtype=np.float64)
    return estimator.predict_proba


def _boosted_trees(estimator, task: str) -> Callable[[np.ndarray], np.ndarray] | None:
    """A HistGradientBoosting model's predict on a float64 matrix by the same compiled tree walk and the
    same sums as its own `_raw_predict`, without what its public predict repeats per call (input
    validation, the known-categories bitsets rebuilt, a closure and an array per tree): the trees of a
    single flights row (200 of them) took 1.2 ms instead of 2.9; with the model's own category recoding,
    which stays, the whole scorer 1.9 ms of CPU instead of 2.3-2.5 (both measured on a loaded machine).
    Private scikit-learn API, pinned by the lock: any difference raises or changes a bit, and
    the compile check then keeps the public predict. None for other estimators."""
    try:
        from sklearn.ensemble import HistGradientBoostingClassifier, HistGradientBoostingRegressor
        from sklearn.ensemble._hist_gradient_boosting._predictor import _predict_from_raw_data

        if type(estimator) not in (HistGradientBoostingClassifier, HistGradientBoostingRegressor):
            return None
        remap = estimator._preprocessor  # its own recoding of native categories, as its predict applies it
        known, f_idx_map = estimator._bin_mapper.make_known_categories_bitsets()
        baseline, trees = estimator._baseline_prediction, estimator._predictors
        k, loss = estimator.n_trees_per_iteration_, estimator._loss
    except (ImportError, AttributeError):
        return None

    def raw(x: np.ndarray) -> np.ndarray:
        if remap is not None:
            x = remap.transform(x)
        n = x.shape[0]
        out = np.zeros((n, k), dtype=baseline.dtype, order="F")
        out += baseline
        leaf = np.empty(n, dtype=np.float64)
        for iteration in trees:  # in order: the float sums are the model's own
            for j, tree in enumerate(iteration):
                _predict_from_raw_data(tree.nodes, x, tree.raw_left_cat_bitsets, known, f_idx_map, 1, leaf)
                out[:, j] += leaf
        return out

    if task == "regression":
        return lambda x: np.asarray(loss.link.inverse(raw(x).ravel()), dtype=np.float64)
    return lambda x: loss.predict_proba(raw(x))


def probe_columns(rules: RequestRules, n: int = 64) -> dict[str, list | np.ndarray]:
    """Rows made from the training profile: every known category (cycled), an unseen one and nulls; the
    numbers across and just beyond the training range, with nulls."""
    columns: dict[str, list | np.ndarray] = {}
    for name, known in rules.categorical.items():
        values: list = sorted(known) or ["?"]
        cycle = [*values, "\x00never seen", None]
        columns[name] = [cycle[i % len(cycle)] for i in range(n)]
    for k, (name, (lo, hi)) in enumerate(rules.numerical.items()):
        lo = 0.0 if lo is None else float(lo)
        hi = lo + 1.0 if hi is None else float(hi)
        span = np.linspace(lo - 0.1 * abs(lo) - 1, hi + 0.1 * abs(hi) + 1, n)
        span = span[::-1].copy() if k % 2 else span  # fields not in lockstep; both edges kept
        span[np.arange(n) % 7 == 3] = np.nan
        columns[name] = span
    return columns


def _same_scores(model, scorer: Scorer, rules: RequestRules) -> bool:
    columns = probe_columns(rules)
    n = len(next(iter(columns.values())))
    frame = pd.DataFrame({c: columns[c] for c in model.steps[0][1].feature_names_in_})
    expected = scores(model, frame)
    for rows in (slice(0, n), slice(0, 1)):  # a batch and a single row
        part = {c: v[rows] for c, v in columns.items()}
        got = scorer(part, len(range(n)[rows]))
        if got.shape != expected[rows].shape or not np.array_equal(got, expected[rows], equal_nan=True):
            return False
    return True
