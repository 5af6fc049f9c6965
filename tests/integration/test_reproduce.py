"""Reproduce a past model from commit + data hash after the project has moved on (new data, a param
change), prove it identical, see a corrupted cache byte named in the verdict, the refusals, the
lineage checklist, and the plain `git checkout && dvc pull && dvc repro` path."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from pathlib import Path

import pytest
import yaml
from conftest import commit_all, copy_project, dvc, edit_params, git, mlpipe, run_id_of, sh, tracking_client

from mlpipe.registry import tags as tag

pytestmark = pytest.mark.integration
MODEL = "flights-late"


def data_md5(root: Path) -> str:
    return yaml.safe_load((root / "data.dvc").read_text())["outs"][0]["md5"]


@pytest.fixture(scope="module")
def history(first_run, tmp_path_factory):
    """The first model, then three retrains: new data, a train param change, new data again."""
    root = copy_project(first_run[0], tmp_path_factory.mktemp("history") / "project")
    first = {
        "run_id": run_id_of(first_run[1]),
        "commit": git(root, "rev-parse", "HEAD"),
        "data_md5": data_md5(root),
    }
    mlpipe(root, "simulate", "--next")
    mlpipe(root, "run")
    hyper = yaml.safe_load((root / "params.yaml").read_text())["train"]["hyperparams"]
    edit_params(root, train={"hyperparams": {**hyper, "max_iter": 30}})
    commit_all(root, "train: max_iter 30")
    mlpipe(root, "run")
    mlpipe(root, "simulate", "--next")
    last = mlpipe(root, "run")
    assert [v.version for v in tracking_client(root).search_model_versions(f"name = '{MODEL}'")] and data_md5(
        root
    ) != first["data_md5"]
    return root, first, run_id_of(last)


def test_the_first_model_is_reproduced_identically_without_touching_the_working_tree(history):
    root, first, _ = history
    head, md5_now = git(root, "rev-parse", "HEAD"), data_md5(root)
    proc = mlpipe(root, "reproduce", f"models:/{MODEL}/1", "--json")
    v = json.loads(proc.stdout)
    assert v["identical"] is True and v["predictions_identical"] is True and v["different"] == []
    assert v["commit"] == first["commit"] and v["data_md5"] == first["data_md5"] != md5_now
    assert v["model_sha256"]["original"] == v["model_sha256"]["reproduced"]
    assert v["metrics"]["original"]["roc_auc"] == v["metrics"]["reproduced"]["roc_auc"]
    assert any(r["item"].startswith("output train:") and r["same"] for r in v["rows"])
    # the user's tree, HEAD and data pointer are as they were; no worktree is left behind
    assert git(root, "rev-parse", "HEAD") == head and data_md5(root) == md5_now
    assert git(root, "status", "--porcelain") == "" and len(git(root, "worktree", "list").splitlines()) == 1
    client = tracking_client(root)
    repro = client.get_run(v["reproduction_run_id"])
    assert (
        repro.data.tags["mlpipe.reproduces"] == first["run_id"]
        and repro.data.tags["mlpipe.reproduction.verdict"] == "identical"
    )
    assert client.get_run(first["run_id"]).data.tags["mlpipe.reproduced"].startswith("identical")
    assert client.get_model_version(MODEL, "1").tags["mlpipe.reproduced"].startswith("identical")

    lineage = json.loads(mlpipe(root, "lineage", f"models:/{MODEL}/1", "--json").stdout)
    assert lineage["registry"][0]["version"] == "1" and lineage["run"]["run_id"] == first["run_id"]
    assert (
        lineage["git"] == {"commit": first["commit"], "clean": True}
        and lineage["data_md5"] == first["data_md5"]
    )
    assert set(lineage["split"]) == {
        "artifacts/split/train.parquet",
        "artifacts/split/test.parquet",
        "artifacts/split/split.json",
    }
    assert lineage["params"]["seed"] == "42" and 0 < lineage["metrics"]["roc_auc"] < 1
    assert lineage["drift_share"] is not None and lineage["reproductions"][-1]["verdict"] == "identical"
    assert "reproduction:    identical" in mlpipe(root, "lineage", first["run_id"]).stdout


def test_every_training_run_carries_its_lineage_artifact(history):
    root, _, last_run = history
    files = {a.path for a in tracking_client(root).list_artifacts(last_run, "lineage")}
    assert files == {"lineage/lineage.json", "lineage/lineage.txt", "lineage/dvc_outputs.json"}


def test_a_corrupted_byte_in_the_cached_data_is_named_in_the_verdict(history, tmp_path):
    root = copy_project(history[0], tmp_path / "project")
    first_md5 = history[1]["data_md5"]
    listing = root / ".dvc/cache/files/md5" / first_md5[:2] / first_md5[2:]
    entry = json.loads(listing.read_text())[0]
    for store in (root / ".dvc/cache", root / ".dvcstore"):  # the remote too, or DVC would repair it
        f = store / "files/md5" / entry["md5"][:2] / entry["md5"][2:]
        raw = bytearray(f.read_bytes())
        at = raw.index(b'"pandas_version": "') + len(b'"pandas_version": "')
        raw[at] ^= 0x01  # one byte, the file still reads
        os.chmod(f, 0o644)
        f.write_bytes(bytes(raw))
    proc = mlpipe(root, "reproduce", history[1]["run_id"], "--json", check=False)
    assert proc.returncode == 4, proc.stderr
    v = json.loads(proc.stdout)
    assert v["identical"] is False and v["different"] == [f"data file {entry['relpath']}"]
    row = next(r for r in v["rows"] if r["item"] == f"data file {entry['relpath']}")
    assert row["original"] == entry["md5"] and row["reproduced"] != entry["md5"]
    assert (
        tracking_client(root).get_run(v["reproduction_run_id"]).data.tags["mlpipe.reproduction.verdict"]
        == "different"
    )


def test_refusals_name_the_cause(history, tmp_path):
    root = copy_project(history[0], tmp_path / "project")
    # data hash in neither cache nor remote
    shutil.rmtree(root / ".dvc/cache")
    shutil.rmtree(root / ".dvcstore")
    proc = mlpipe(root, "reproduce", f"models:/{MODEL}/1", check=False)
    assert proc.returncode == 2 and "is in neither the DVC cache nor the remote" in proc.stderr
    # a commit that no longer exists
    last = tracking_client(root).get_run(history[2]).data.tags[tag.GIT_COMMIT]
    git(root, "reset", "-q", "--hard", "HEAD~2")
    git(root, "reflog", "expire", "--expire=now", "--all")
    git(root, "gc", "-q", "--prune=now")
    proc = mlpipe(root, "reproduce", history[2], check=False)
    assert proc.returncode == 2 and f"commit {last} of run {history[2]} no longer exists" in proc.stderr
    # a reference that names nothing
    proc = mlpipe(root, "reproduce", "not-a-ref", check=False)
    assert proc.returncode == 2 and "not a run id" in proc.stderr


def test_a_run_from_a_dirty_tree_is_refused(history, tmp_path):
    root = copy_project(history[0], tmp_path / "project")
    edit_params(root, evaluate={"threshold": 0.4})  # not committed
    (root / "notes.txt").write_text("an untracked file")
    refused = mlpipe(root, "run", check=False)
    assert refused.returncode == 6 and refused.stdout == ""
    line = refused.stderr.strip().splitlines()[-1]
    assert "2 uncommitted path(s): notes.txt, params.yaml" in line and "--experiment" in line
    versions = len(tracking_client(root).search_model_versions("name = 'flights-late'"))
    run = mlpipe(root, "run", "--experiment")
    assert "mlpipe run: experiment: " in run.stdout and "(dirty tree)" in run.stdout
    assert "unregistered" in run.stdout
    client = tracking_client(root)
    assert len(client.search_model_versions("name = 'flights-late'")) == versions  # no version
    assert client.get_run(run_id_of(run)).data.tags["mlpipe.experiment"] == "unreproducible"
    proc = mlpipe(root, "reproduce", run_id_of(run), check=False)
    assert (
        proc.returncode == 2
        and "recorded from a dirty tree" in proc.stderr
        and "Commit your changes" in proc.stderr
    )


def test_plain_git_checkout_dvc_pull_dvc_repro_gives_the_same_model_bytes(history, tmp_path):
    root, first, _ = history
    clone = tmp_path / "clone"
    sh(["git", "clone", "-q", str(root), str(clone)], tmp_path)
    dvc(clone, "remote", "modify", "--local", "local", "url", str(root / ".dvcstore"))
    git(clone, "checkout", "-q", first["commit"])
    dvc(clone, "pull", "data.dvc")
    proc = dvc(clone, "repro")
    assert "Running stage 'train'" in proc.stdout  # nothing restored: the model is rebuilt from data + code
    sha = hashlib.sha256((clone / "artifacts/model/model.skops").read_bytes()).hexdigest()
    assert sha == tracking_client(root).get_run(first["run_id"]).data.tags[tag.MODEL_SHA256]


def test_diff_compares_two_models_on_the_same_rows(history):
    root = history[0]
    d = json.loads(
        mlpipe(
            root, "diff", f"models:/{MODEL}/1", f"models:/{MODEL}@challenger", "--json", "--top", "3"
        ).stdout
    )
    assert d["rows"] > 0 and d["classifier"] and 0 <= d["changed_share"] <= 1 and not d["identical"]
    assert set(d["metrics"]) >= {"roc_auc", "accuracy"} and len(d["top_changed"]) == 3
    assert abs(d["top_changed"][0]["delta"]) >= abs(d["top_changed"][-1]["delta"])
    same = json.loads(mlpipe(root, "diff", f"models:/{MODEL}/1", f"models:/{MODEL}/1", "--json").stdout)
    assert same["identical"] and same["changed_predictions"] == 0
