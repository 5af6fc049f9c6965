"""Sweep rules: the grid, the validation cut, the winner, and the winner written into params.yaml with
every comment kept. The Dask/MLflow/DVC path is in tests/integration/test_sweep.py."""

from __future__ import annotations

import hashlib
import json

import pandas as pd
import pytest
import yaml
from pydantic import ValidationError

from mlpipe.config import Params, ProjectPaths, load_params
from mlpipe.errors import SnapshotMismatch, SweepRefused
from mlpipe.pipeline.sweep import (
    candidate_seed,
    candidate_train_cfg,
    carve_validation,
    check_grid,
    expand_grid,
    pick_winner,
    read_verified_train,
    score_candidate,
    scoring_identity,
    set_hyperparams_text,
    stale_split_params,
    training_frames,
    write_hyperparams,
)


def test_the_project_params_declare_a_usable_grid(params):
    assert params.sweep is not None and params.sweep.metric == "roc_auc"
    check_grid(params.train, params.features, params.sweep.grid, params.task)
    assert len(expand_grid(params.train.hyperparams, params.sweep.grid)) == 9


def test_every_combination_is_one_candidate_over_the_configured_hyperparams():
    base = {"learning_rate": 0.1, "max_iter": 200, "max_leaf_nodes": 31}
    got = expand_grid(base, {"learning_rate": [0.05, 0.2], "max_leaf_nodes": [7, 15, 31]})
    assert len(got) == 6 and all(c["max_iter"] == 200 for c in got)
    assert [(c["learning_rate"], c["max_leaf_nodes"]) for c in got[:3]] == [(0.05, 7), (0.05, 15), (0.05, 31)]
    assert base["learning_rate"] == 0.1  # the base is not modified


@pytest.mark.parametrize(
    "grid, message",
    [
        ({}, "empty"),
        ({"learning_rate": []}, "have no values"),
        ({"learning_rate": [0.1, 0.1]}, "repeat a value"),
    ],
)
def test_an_unusable_grid_is_refused_with_the_rule(params_dict, grid, message):
    params_dict["sweep"]["grid"] = grid
    with pytest.raises(ValidationError, match=message):
        Params.model_validate(params_dict)


def test_an_unknown_metric_is_refused(params_dict):
    params_dict["sweep"]["metric"] = "auc"
    with pytest.raises(ValidationError, match="sweep.metric 'auc': not a binary metric"):
        Params.model_validate(params_dict)


def test_a_project_without_a_sweep_section_still_loads(params_dict):
    del params_dict["sweep"]
    assert Params.model_validate(params_dict).sweep is None


@pytest.mark.parametrize(
    "key, message",
    [
        ("random_state", "set by mlpipe"),
        ("n_jobs", "set by mlpipe"),
        ("learning_rat", "not hyperparameters of hist_gradient_boosting"),
    ],
)
def test_grid_keys_the_estimator_does_not_take_or_config_owns_are_refused(params, key, message):
    with pytest.raises(ValueError, match=message):
        check_grid(params.train, params.features, {key: [1, 2]}, params.task)


def test_the_validation_part_is_the_newest_rows_of_the_train_split(params, make_frame):
    train = make_frame(200, seed=1)
    fit, valid = carve_validation(train.sample(frac=1, random_state=0), params, 0.25)
    assert len(valid) == 50 and len(fit) == 150
    assert fit["time_hour"].max() < valid["time_hour"].min()  # never shuffled across the cut


def test_a_random_split_project_draws_the_validation_part_from_its_own_seed(params, make_frame):
    p = params.model_copy(update={"split": params.split.model_copy(update={"method": "random"})})
    train = make_frame(200, seed=1)
    fit_a, valid_a = carve_validation(train, p, 0.25)
    fit_b, valid_b = carve_validation(train, p, 0.25)
    pd.testing.assert_frame_equal(valid_a, valid_b)
    other = p.model_copy(update={"seed": p.seed + 1})
    assert not carve_validation(train, other, 0.25)[1].equals(valid_a)


def test_a_validation_part_with_one_class_is_refused(params, make_frame):
    train = make_frame(40, seed=1).assign(late=0)
    with pytest.raises(ValueError, match="both classes in validation"):
        carve_validation(train, params, 0.25)


def test_a_candidate_is_fitted_as_the_train_stage_fits_and_scores_the_same_twice(params, make_frame):
    frames = training_frames(make_frame(300, seed=2), params, 0.2)
    cfg = candidate_train_cfg(params.train, {**params.train.hyperparams, "max_iter": 10, "max_leaf_nodes": 7})
    args = (
        cfg,
        params.features,
        frames["X_fit"],
        frames["y_fit"],
        frames["X_val"],
        frames["y_val"],
        candidate_seed(params),
        params.evaluate.threshold,
        params.task,
    )
    a, b = score_candidate(*args), score_candidate(*args)
    assert a["metrics"] == b["metrics"] and a["metrics"]["n_test"] == 60
    assert candidate_seed(params) == params.seed + 2  # the train stage's seed


@pytest.mark.parametrize(
    "metric, values, best",
    [
        ("roc_auc", [0.6, 0.7, 0.7, 0.65], 1),  # higher is better; ties go to the earlier candidate
        ("log_loss", [0.4, 0.3, 0.35], 1),  # lower is better
        ("roc_auc", [float("nan"), None, 0.5], 2),  # a failed or unscored candidate never wins
    ],
)
def test_the_winner_is_the_best_validation_value(metric, values, best):
    assert pick_winner(values, metric) == best


def test_no_scored_candidate_means_no_winner():
    with pytest.raises(ValueError, match="no candidate has a roc_auc value"):
        pick_winner([None, float("nan")], "roc_auc")


def test_the_winner_is_written_in_place_and_every_comment_is_kept(params_path):
    text = params_path.read_text()
    out = set_hyperparams_text(text, {"learning_rate": 0.05, "max_leaf_nodes": 63})
    changed = [(a, b) for a, b in zip(text.splitlines(), out.splitlines(), strict=True) if a != b]
    assert [b.strip() for _, b in changed] == ["learning_rate: 0.05", "max_leaf_nodes: 63"]
    doc = yaml.safe_load(out)
    assert doc["train"]["hyperparams"]["learning_rate"] == 0.05 and doc["sweep"]["grid"]["learning_rate"] == [
        0.05,
        0.1,
        0.2,
    ]
    assert [line for line in text.splitlines() if "#" in line] == [
        line for line in out.splitlines() if "#" in line
    ]


def test_an_inline_comment_keeps_its_column_and_a_new_key_joins_the_block():
    text = (
        "seed: 1\ntrain:\n  estimator: hist_gradient_boosting\n  hyperparams:   # tuned by mlpipe sweep\n"
        "    learning_rate: 0.1     # step size\n    max_iter: 200\n\n"
        "  n_jobs: 1\nother:\n  learning_rate: 9\n"
    )
    out = set_hyperparams_text(text, {"learning_rate": 0.25, "max_depth": 6})
    lines = out.splitlines()
    assert lines[4] == "    learning_rate: 0.25    # step size"
    assert lines[6] == "    max_depth: 6" and lines[8] == "  n_jobs: 1"
    assert yaml.safe_load(out)["other"] == {"learning_rate": 9}  # same key elsewhere untouched


def test_a_params_file_without_a_hyperparams_block_is_refused():
    with pytest.raises(ValueError, match="no block `train: hyperparams:`"):
        set_hyperparams_text("train:\n  hyperparams: {learning_rate: 0.1}\n", {"learning_rate": 0.2})


def test_writing_the_current_values_leaves_the_file_alone(tmp_path, params_path):
    target = tmp_path / "params.yaml"
    target.write_text(params_path.read_text())
    current = load_params(target).train.hyperparams
    assert write_hyperparams(target, {"learning_rate": current["learning_rate"]}) is False
    assert write_hyperparams(target, {"learning_rate": 0.2}) is True
    assert load_params(target).train.hyperparams["learning_rate"] == 0.2


def _project(tmp_path, params_path, make_frame, *, data_md5="abc.dir"):
    tmp_path.mkdir(parents=True, exist_ok=True)
    paths = ProjectPaths(tmp_path)
    (tmp_path / "params.yaml").write_text(params_path.read_text())
    (tmp_path / "data.dvc").write_text(yaml.safe_dump({"outs": [{"md5": data_md5, "path": "data"}]}))
    paths.train_split.parent.mkdir(parents=True)
    make_frame(50).to_parquet(paths.train_split)
    payload = paths.train_split.read_bytes()
    raw = yaml.safe_load(params_path.read_text())
    (tmp_path / "dvc.lock").write_text(
        yaml.safe_dump(
            {
                "stages": {
                    "split": {
                        "params": {"params.yaml": {"seed": raw["seed"], "split": raw["split"]}},
                        "outs": [
                            {"path": "artifacts/split/train.parquet", "md5": hashlib.md5(payload).hexdigest()}
                        ],
                    }
                }
            }
        )
    )
    paths.split_record.write_text(
        json.dumps(
            {"data_md5": "abc.dir", "parts": {"train": {"sha256": hashlib.sha256(payload).hexdigest()}}}
        )
    )
    return paths


def test_the_split_dvc_recorded_for_the_current_data_is_read(tmp_path, params_path, make_frame):
    paths = _project(tmp_path, params_path, make_frame)
    frame, identity = read_verified_train(paths)
    assert len(frame) == 50 and identity["data_md5"] == "abc.dir"


def test_a_split_of_other_data_or_other_bytes_or_other_params_is_refused(tmp_path, params_path, make_frame):
    paths = _project(tmp_path, params_path, make_frame, data_md5="new.dir")
    with pytest.raises(SnapshotMismatch, match="data.dvc is at new.dir"):
        read_verified_train(paths)
    paths = _project(tmp_path / "b", params_path, make_frame)
    make_frame(51).to_parquet(paths.train_split)
    with pytest.raises(SnapshotMismatch, match="dvc.lock records"):
        read_verified_train(paths)
    paths = _project(tmp_path / "c", params_path, make_frame)
    (paths.root / "params.yaml").write_text(
        params_path.read_text().replace("test_fraction: 0.2", "test_fraction: 0.3")
    )
    assert stale_split_params(
        paths.root / "dvc.lock", yaml.safe_load((paths.root / "params.yaml").read_text())
    ) == ["split"]
    with pytest.raises(SnapshotMismatch, match=r"other params than params.yaml's \['split'\]"):
        read_verified_train(paths)


def test_workers_on_another_machine_without_a_shared_prefect_server_are_refused():
    from prefect.settings import PREFECT_API_URL, temporary_settings

    from mlpipe.flows.sweep import workers_reach_prefect

    with temporary_settings(restore_defaults={PREFECT_API_URL}):
        with (
            pytest.raises(ValueError, match="need a shared Prefect server"),
            workers_reach_prefect("tcp://10.0.0.5:8786"),
        ):
            pass
    with temporary_settings(updates={PREFECT_API_URL: "http://prefect.team:4200/api"}):
        with workers_reach_prefect("tcp://10.0.0.5:8786") as url:  # a shared server: used as it is
            assert url == "http://prefect.team:4200/api"


def test_a_worker_proves_it_scores_with_the_same_packages_and_code():
    ident = scoring_identity()
    assert ident == scoring_identity() and len(ident["mlpipe_code"]) == 64
    assert {"scikit-learn", "numpy", "pandas", "skops", "python"} <= set(ident)


def test_the_choice_names_the_best_scored_candidate_and_keeps_failed_ones_as_rows():
    from mlpipe.pipeline.sweep import choose

    candidates = [{"max_depth": d, "learning_rate": 0.1} for d in (2, 4, 8)]
    results = [
        {"index": 0, "metrics": {"log_loss": 0.5}, "fit_s": 1.0, "worker": "w:1"},
        {"index": 1, "error": "ValueError: no"},
        {"index": 2, "metrics": {"log_loss": 0.4}, "fit_s": 2.0, "worker": "w:2"},
    ]
    choice = choose(candidates, {"max_depth": [2, 4, 8]}, results, "log_loss")
    assert (choice.best, choice.winner, choice.values) == (2, {"max_depth": 8}, [0.5, None, 0.4])
    assert choice.rows[1] == {
        "candidate": 1,
        "max_depth": 4,
        "val_log_loss": None,
        "fit_s": None,
        "worker": None,
        "error": "ValueError: no",
    }
    with pytest.raises(SweepRefused, match="no candidate has a log_loss value"):
        choose(candidates[:1], {"max_depth": [2]}, results[1:2], "log_loss")
