"""params.yaml is the only knob file: it loads into frozen typed sections, and bad settings are refused
by name."""

from __future__ import annotations

import copy
from datetime import date
from pathlib import Path

import pytest
import yaml
from pydantic import ValidationError

from mlpipe.config import (
    Params,
    ProjectPaths,
    config_problems,
    flatten,
    load_params,
    params_hash,
    read_params_dict,
)
from mlpipe.errors import ConfigError


def _refusal(raw: dict) -> str:
    """The error text pydantic gives for a params mapping that must be refused."""
    with pytest.raises(ValidationError) as info:
        Params.model_validate(raw)
    return str(info.value)


def test_project_params_load_into_typed_sections(params):
    assert params.seed == 42
    assert params.dataset.target == "late"
    assert params.dataset.time_column == "time_hour"
    assert params.dataset.initial_period.start == date(2013, 1, 1)
    assert params.dataset.initial_period.end == date(2013, 4, 1)
    assert params.features.columns[:4] == ["carrier", "origin", "dest", "distance"]
    assert params.validate_.ranges["distance"].min == 1.0
    assert params.validate_.ranges["distance"].max == 6000.0
    assert params.split.method == "time"
    assert params.train.estimator == "hist_gradient_boosting"
    assert params.train.n_jobs == 1


def test_no_leakage_column_is_a_configured_feature(params):
    assert not set(params.features.columns) & set(params.features.leakage)
    assert params.dataset.target not in params.features.columns


def test_feature_listed_as_leakage_is_refused_with_its_name(params_dict):
    params_dict["features"]["numerical"].append("dep_delay")
    message = _refusal(params_dict)
    assert "dep_delay" in message
    assert "leakage" in message


def test_a_column_moved_to_leakage_names_the_rules_still_checking_it(params_dict):
    """Moving a feature to features.leakage (as init proposes for a column known only afterwards) while a
    validate rule still names it: the refusal says which rules and why, not "unknown columns"."""
    params_dict["features"]["numerical"].remove("distance")
    params_dict["features"]["leakage"].append("distance")
    message = _refusal(params_dict)
    assert "validate.ranges.distance, validate.required_not_null[distance]" in message
    assert "now under features.leakage" in message and "unknown columns" not in message


def test_leaky_params_file_is_refused_when_loaded(tmp_path, params_dict):
    params_dict["features"]["categorical"].append("tailnum")
    path = tmp_path / "params.yaml"
    path.write_text(yaml.safe_dump(params_dict), encoding="utf-8")
    with pytest.raises(ConfigError, match="tailnum"):
        load_params(path)


def test_target_used_as_a_feature_is_refused(params_dict):
    params_dict["features"]["numerical"].append("late")
    message = _refusal(params_dict)
    assert "'late'" in message
    assert "target" in message


def test_feature_listed_twice_is_refused(params_dict):
    params_dict["features"]["numerical"].append("carrier")
    message = _refusal(params_dict)
    assert "carrier" in message
    assert "listed twice" in message


def test_unknown_top_level_key_is_refused(params_dict):
    params_dict["seeds"] = 7
    message = _refusal(params_dict)
    assert "seeds" in message
    assert "Extra inputs are not permitted" in message


def test_misspelled_nested_key_is_refused(params_dict):
    params_dict["split"]["test_fracton"] = 0.3
    assert "test_fracton" in _refusal(params_dict)


def test_an_estimator_that_is_no_name_or_path_is_refused(params_dict):
    params_dict["train"]["estimator"] = "xgboost classifier"
    message = _refusal(params_dict)
    assert "train.estimator" in message and "neither a short name nor a dotted path" in message


def test_a_classifier_metric_in_a_regression_project_is_refused(params_dict):
    params_dict["task"] = "regression"
    message = _refusal(params_dict)
    assert "gate.tolerance 'roc_auc'" in message and "not a regression metric" in message


def test_a_time_split_without_a_time_column_is_refused(params_dict):
    params_dict["dataset"] = {"source": "files", "path": "raw.csv", "target": "late"}
    params_dict["validate"]["required_not_null"] = ["carrier"]
    message = _refusal(params_dict)
    assert "split.method: time needs dataset.time_column" in message


def test_a_periodic_source_needs_its_period(params_dict):
    del params_dict["dataset"]["initial_period"]
    assert "time_column and initial_period are required" in _refusal(params_dict)


def test_an_unknown_source_is_refused(params_dict):
    params_dict["dataset"]["source"] = "kaggle"
    assert "source: 'kaggle' unknown" in _refusal(params_dict)


def test_test_fraction_outside_zero_one_is_refused(params_dict):
    params_dict["split"]["test_fraction"] = 1.0
    assert "split.test_fraction" in _refusal(params_dict)


def test_initial_period_ending_before_it_starts_is_refused(params_dict):
    params_dict["dataset"]["initial_period"] = {"start": "2013-04-01", "end": "2013-01-01"}
    message = _refusal(params_dict)
    assert "end 2013-01-01 not after start 2013-04-01" in message


def test_params_are_frozen_once_loaded(params):
    with pytest.raises(ValidationError):
        params.seed = 0  # type: ignore[misc]


def test_missing_params_file_fails_naming_it(tmp_path):
    with pytest.raises(FileNotFoundError, match="nowhere.yaml"):
        load_params(tmp_path / "nowhere.yaml")


def test_raw_params_dict_is_the_file_as_written(params_path):
    raw = read_params_dict(params_path)
    assert raw["validate"]["max_null_rate"] == 0.6
    assert raw["dataset"]["initial_period"]["start"] == "2013-01-01"


def test_flatten_names_nested_keys_with_dots_and_keeps_lists():
    nested = {"seed": 1, "train": {"estimator": "rf", "hyperparams": {"max_iter": 5}}, "cols": ["a", "b"]}
    assert flatten(nested) == {
        "seed": 1,
        "train.estimator": "rf",
        "train.hyperparams.max_iter": 5,
        "cols": ["a", "b"],
    }


def test_flatten_applies_a_prefix_and_flattens_the_real_params(params_path):
    assert flatten({"a": {"b": 1}}, "params.") == {"params.a.b": 1}
    flat = flatten(read_params_dict(params_path))
    assert flat["validate.ranges.distance.max"] == 6000
    assert flat["features.categorical"] == ["carrier", "origin", "dest"]


def test_params_hash_is_stable_and_ignores_key_order():
    first = params_hash({"a": 1, "b": {"c": [1, 2], "d": "x"}})
    again = params_hash({"b": {"d": "x", "c": [1, 2]}, "a": 1})
    assert first == again
    assert len(first) == 64 and int(first, 16) >= 0


def test_params_hash_changes_when_any_value_changes(params_dict):
    before = params_hash(params_dict)
    changed = copy.deepcopy(params_dict)
    changed["train"]["hyperparams"]["learning_rate"] = 0.11
    assert params_hash(changed) != before
    reordered = copy.deepcopy(params_dict)
    reordered["features"]["categorical"] = list(reversed(reordered["features"]["categorical"]))
    assert params_hash(reordered) != before  # list order is part of the configuration


def test_params_hash_handles_dates():
    assert params_hash({"start": date(2013, 1, 1)}) == params_hash({"start": "2013-01-01"})


def test_project_paths_follow_the_dvc_layout(tmp_path):
    paths = ProjectPaths(tmp_path)
    assert paths.data == tmp_path / "data"
    assert paths.profile == tmp_path / "artifacts" / "validate" / "profile.json"
    assert paths.validation_report == tmp_path / "artifacts" / "validate" / "report.md"
    assert paths.train_split == tmp_path / "artifacts" / "split" / "train.parquet"
    assert paths.test_split == tmp_path / "artifacts" / "split" / "test.parquet"
    assert paths.split_record == tmp_path / "artifacts" / "split" / "split.json"
    assert paths.model == tmp_path / "artifacts" / "model" / "model.skops"
    assert paths.manifest == tmp_path / "artifacts" / "model" / "manifest.json"
    assert paths.metrics == tmp_path / "metrics.json"
    assert paths.predictions == tmp_path / "artifacts" / "evaluate" / "predictions.parquet"
    assert paths.predictions_record == tmp_path / "artifacts" / "evaluate" / "predictions.json"
    assert paths.plots == tmp_path / "artifacts" / "evaluate" / "plots"
    assert paths.artifact_root == tmp_path / "mlruns" / "artifacts"
    assert paths.tracking_uri == f"sqlite:///{tmp_path}/mlruns/mlflow.db"


def test_project_paths_create_nothing(tmp_path):
    paths = ProjectPaths(tmp_path / "project")
    _ = (paths.data, paths.model, paths.tracking_uri)
    assert not Path(tmp_path / "project").exists()


def test_rule_naming_an_unknown_column_is_refused(params_dict, tmp_path):
    import yaml

    from mlpipe.config import load_params

    params_dict["validate"]["ranges"]["distnace"] = {"min": 1, "max": 6000}
    path = tmp_path / "params.yaml"
    path.write_text(yaml.safe_dump(params_dict))
    with pytest.raises(ValueError, match=r"unknown columns \['distnace'\]"):
        load_params(path)


def test_a_positive_class_is_only_for_a_binary_task(params_dict):
    params_dict["dataset"]["positive_class"] = "late"
    assert Params.model_validate(params_dict).dataset.positive_class == "late"
    params_dict["task"] = "regression"
    params_dict["gate"]["tolerance"] = {"r2": 0.01}
    params_dict["monitor"]["metric"] = "r2"
    params_dict.pop("sweep")
    message = _refusal(params_dict)
    assert "dataset.positive_class: 'late' given for task regression" in message
    assert "rule: only a binary task has a positive class" in message


def test_the_bundled_project_states_its_positive_class(params):
    assert params.dataset.positive_class == 1


def test_a_misspelt_key_names_the_key_it_is_close_to(params_dict):
    params_dict["evalute"] = params_dict.pop("evaluate")
    params_dict["monitor"]["metrik"] = "roc_auc"
    params_dict["train"]["zzz"] = 1
    with pytest.raises(ValidationError) as info:
        Params.model_validate(params_dict)
    message = config_problems(info.value, Params)
    assert "evalute: Extra inputs are not permitted (did you mean 'evaluate'?)" in message
    assert "monitor.metrik: Extra inputs are not permitted (did you mean 'metric'?)" in message
    assert "train.zzz: Extra inputs are not permitted;" in message + ";", "nothing close: no suggestion"


def test_a_yaml_alias_bomb_is_refused_in_one_line_before_it_is_expanded(tmp_path):
    """Nine aliases of nine aliases, eight deep: 9^8 (43 million) values from nine lines. Refused while
    composing, well under a second, before pydantic or params_hash ever see it."""
    import time

    lines = ['l0: &l0 ["x", "x", "x", "x", "x", "x", "x", "x", "x"]']
    lines += [f"l{i}: &l{i} [{', '.join([f'*l{i - 1}'] * 9)}]" for i in range(1, 8)]
    real = (Path(__file__).resolve().parents[2] / "params.yaml").read_text()
    bomb = real.replace("    early_stopping: false", "    early_stopping: false\n    bomb: *l7")
    path = tmp_path / "params.yaml"
    path.write_text("\n".join(lines) + "\n" + bomb)
    t0 = time.perf_counter()
    with pytest.raises(ConfigError) as info:
        load_params(path)
    assert time.perf_counter() - t0 < 1.0
    message = str(info.value)
    assert message.startswith(f"{path}: aliases expand to more than 100,000 values") and "\n" not in message


def test_aliases_that_stay_small_load_as_before_and_an_alias_inside_itself_is_refused(tmp_path):
    from mlpipe.config import bounded_yaml

    assert bounded_yaml("a: &x {b: [1, 2]}\nc: *x") == {"a": {"b": [1, 2]}, "c": {"b": [1, 2]}}
    with pytest.raises(ConfigError, match="an alias contains itself"):
        bounded_yaml("a: &x [1, *x]", "p.yaml")
