"""One description of the stages: the bundled dvc.yaml and every `mlpipe init` project agree with it."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from mlpipe.pipeline.layout import STAGES, project_pipeline, task_plots

ROOT = Path(__file__).resolve().parents[3]


def test_the_bundled_dvc_yaml_is_the_layout_plus_the_source_files_each_stage_imports():
    bundled = yaml.safe_load((ROOT / "dvc.yaml").read_text())
    ours = project_pipeline("binary", locked=True)
    assert list(bundled["stages"]) == list(STAGES)
    for name, stage in bundled["stages"].items():
        mine = ours["stages"][name]
        assert stage["cmd"] == mine["cmd"]
        assert stage["params"] == mine["params"] and stage["outs"] == mine["outs"]
        assert [d for d in stage["deps"] if not d.startswith("src/")] == mine["deps"]
        assert stage.get("metrics") == mine.get("metrics")
    assert bundled["plots"] == task_plots("binary")


def test_the_lock_file_is_a_dependency_of_the_stages_that_make_the_model_and_its_predictions():
    bundled = yaml.safe_load((ROOT / "dvc.yaml").read_text())["stages"]
    assert [name for name, stage in bundled.items() if "uv.lock" in stage["deps"]] == ["train", "evaluate"]
    assert "uv.lock" not in str(project_pipeline("binary"))  # a project without a lock of its own


def test_a_project_pipeline_tracks_the_users_source_and_plots_what_its_task_writes():
    reg = project_pipeline("regression", ["my_pkg/source.py"])
    assert reg["stages"]["validate"]["deps"] == ["data", "my_pkg/source.py"]
    assert reg["stages"]["split"]["deps"] == ["data", "artifacts/validate/profile.json"]
    plotted = [p if isinstance(p, str) else next(iter(p.values()))["y"] for p in reg["plots"]]
    assert "artifacts/evaluate/plots/residuals.png" in plotted
    assert {"artifacts/evaluate/plots/predicted_vs_actual.csv": "predicted"} in plotted
    multi = project_pipeline("multiclass")["plots"]
    assert multi[-1] == "artifacts/evaluate/plots/confusion_matrix.png" and len(multi) == 2


def test_a_binary_projects_positive_class_is_a_param_of_train_and_an_older_dvc_yaml_is_refused(tmp_path):
    from mlpipe.errors import ConfigError
    from mlpipe.pipeline.layout import check_positive_class_tracked

    assert "dataset.positive_class" in project_pipeline("binary")["stages"]["train"]["params"]
    for task in ("multiclass", "regression"):  # DVC refuses a param params.yaml does not have
        assert "dataset.positive_class" not in str(project_pipeline(task))
    (tmp_path / "dvc.yaml").write_text(yaml.safe_dump(project_pipeline("binary")))
    check_positive_class_tracked(tmp_path, "bad")
    older = project_pipeline("binary")
    older["stages"]["train"]["params"].remove("dataset.positive_class")
    (tmp_path / "dvc.yaml").write_text(yaml.safe_dump(older))
    check_positive_class_tracked(tmp_path, None)  # not set: nothing to retrain on
    with pytest.raises(ConfigError, match="dataset.positive_class is not a param of stage train"):
        check_positive_class_tracked(tmp_path, "bad")
