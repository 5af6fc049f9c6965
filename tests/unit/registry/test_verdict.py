"""The pure parts of reproduce/diff: parsing the record, refusals, the verdict table, the differential
report."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest

from mlpipe.errors import Refused
from mlpipe.registry.refs import MODEL_REF
from mlpipe.registry.reproduce.compare import Row, compare
from mlpipe.registry.reproduce.record import Recorded, recorded_from_run, refusal
from mlpipe.registry.reproduce.report import Verdict, render_table
from mlpipe.release.diff import compare_models, render_diff

# A run logged before lineage/dvc_outputs.json: one tag per stage output (test_tag_layout: the new layout)
TAGS = {
    "mlpipe.git_commit": "a" * 40,
    "mlpipe.git_dirty": "false",
    "mlpipe.data_md5": "d" * 32 + ".dir",
    "mlpipe.model_sha256": "m" * 64,
    "mlpipe.dvc.split.artifacts/split/test.parquet": "t" * 32,
    "mlpipe.dvc.train.artifacts/model": "x" * 32 + ".dir",
    "mlpipe.version.scikit-learn": "1.9.1",
}


def run(tags=TAGS, metrics=None):
    return SimpleNamespace(
        info=SimpleNamespace(run_id="r" * 32, experiment_id="1"),
        data=SimpleNamespace(tags=dict(tags), metrics=metrics or {"roc_auc": 0.7, "drift_share": 0.2}),
    )


def rec(**kw) -> Recorded:
    return recorded_from_run(run({**TAGS, **kw}))


def reproduced(**kw) -> dict:
    base = {
        "data_md5": "d" * 32 + ".dir",
        "model_sha256": "m" * 64,
        "metrics": {"roc_auc": 0.7},
        "stage_outputs": {
            "split:artifacts/split/test.parquet": "t" * 32,
            "train:artifacts/model": "x" * 32 + ".dir",
        },
        "predictions": {"identical": True, "original_sha256": "p", "reproduced_sha256": "p"},
        "versions": {"scikit-learn": "1.9.1"},
        "data_files": {"batch-2013-01-01.parquet": ("f", "f")},
    }
    return base | kw


def test_record_takes_the_stage_outputs_from_the_artifact_map_of_a_new_run():
    tags = {k: v for k, v in TAGS.items() if not k.startswith("mlpipe.dvc.")}
    r = recorded_from_run(run(tags), {"split": {"artifacts/split/test.parquet": "t" * 32}})
    assert r.stage_outputs == {"split:artifacts/split/test.parquet": "t" * 32}
    assert recorded_from_run(run(tags)).stage_outputs == {}


def test_record_of_an_old_run_is_read_from_its_tags():
    r = rec()
    assert r.commit == "a" * 40 and not r.dirty and r.data_md5.endswith(".dir")
    assert r.stage_outputs == {
        "split:artifacts/split/test.parquet": "t" * 32,
        "train:artifacts/model": "x" * 32 + ".dir",
    }
    assert r.versions == {"scikit-learn": "1.9.1"}


def test_a_run_without_mlpipe_tags_is_refused():
    with pytest.raises(Refused, match="not an mlpipe training run"):
        recorded_from_run(run({"mlflow.runName": "x"}))


@pytest.mark.parametrize(
    ("tags", "exists", "says"),
    [
        ({"mlpipe.git_dirty": "true"}, True, "dirty tree"),
        ({}, False, "no longer exists"),
        ({"mlpipe.git_commit": ""}, True, "no git commit"),
        ({"mlpipe.data_md5": ""}, True, "no DVC data hash"),
    ],
)
def test_refusals_say_which_and_what_to_do(tags, exists, says):
    assert says in refusal(rec(**tags), exists)


def test_a_clean_existing_record_is_not_refused():
    assert refusal(rec(), True) is None


def test_identical_when_every_counted_row_matches():
    v = Verdict("x", "r", "c", "d", compare(rec(), reproduced()))
    assert v.identical and v.as_dict()["different"] == []
    assert v.as_dict()["model_sha256"] == {"original": "m" * 64, "reproduced": "m" * 64}


def test_environment_rows_inform_but_do_not_decide():
    v = Verdict("x", "r", "c", "d", compare(rec(), reproduced(versions={"scikit-learn": "1.9.2"})))
    assert v.identical and any(r.item == "env scikit-learn" and not r.same for r in v.rows)


@pytest.mark.parametrize(
    ("change", "row"),
    [
        ({"model_sha256": "z" * 64}, "model_sha256"),
        ({"data_files": {"batch-2013-01-01.parquet": ("f", "g")}}, "data file batch-2013-01-01.parquet"),
        ({"metrics": {"roc_auc": 0.69}}, "metric:roc_auc"),
        (
            {
                "stage_outputs": {
                    "split:artifacts/split/test.parquet": "u" * 32,
                    "train:artifacts/model": "x" * 32 + ".dir",
                }
            },
            "output split:artifacts/split/test.parquet",
        ),
        (
            {"predictions": {"identical": False, "original_sha256": "p", "reproduced_sha256": "q"}},
            "predictions",
        ),
    ],
)
def test_one_difference_names_its_row(change, row):
    v = Verdict("x", "r", "c", "d", compare(rec(), reproduced(**change)))
    assert not v.identical and v.as_dict()["different"] == [row]
    assert f"NOT IDENTICAL ({row})" in render_table(v)


def test_model_refs_are_parsed():
    assert MODEL_REF.match("models:/flights-late/3")["version"] == "3"
    assert MODEL_REF.match("models:/flights-late@champion")["alias"] == "champion"
    assert MODEL_REF.match("models:/x/y") is None


def test_differential_report_counts_flipped_predictions_and_ranks_rows():
    a = np.array([0.1, 0.4, 0.6, 0.9])
    b = np.array([0.1, 0.55, 0.6, 0.2])
    frame = pd.DataFrame({"f": [1, 2, 3, 4]})
    d = compare_models(a, b, "binary", np.array([0, 1, 1, 1]), 0.5, frame, top=2)
    assert d["changed_predictions"] == 2 and d["changed_share"] == 0.5 and not d["identical"]
    assert [r["row"] for r in d["top_changed"]] == [3, 1]
    assert d["metrics"]["accuracy"]["delta"] == pytest.approx(0.0)
    d |= {"a": {"ref": "A", "run_id": "1" * 32}, "b": {"ref": "B", "run_id": "2" * 32}}
    text = render_diff(d)
    assert "changed answers (threshold 0.5): 2 (50.0000%)" in text
    assert "row 3: A P=0.9 (1) -> B P=0.2 (0); delta=-0.7" in text
    assert "(negative flips): 1 (25.00%); A wrong, B right (positive flips): 1 (25.00%)" in text


def test_differential_report_for_a_regressor_gives_delta_quantiles():
    d = compare_models(
        np.array([1.0, 2.0]),
        np.array([1.5, 2.0]),
        "regression",
        np.array([1.0, 2.0]),
        0.5,
        pd.DataFrame({"f": [0, 1]}),
    )
    assert (
        "changed_share" not in d
        and d["delta_quantiles"]["1.0"] == 0.5
        and d["metrics"]["mae"]["delta"] == 0.25
    )


def test_row_is_plain_data():
    assert Row("a", 1, 1, True).counts
