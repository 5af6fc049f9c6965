"""The spine end to end: bootstrap a slice of the real data, dvc repro, MLflow record, registry."""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path

import pandas as pd
import pytest
import yaml
from conftest import (
    commit_all,
    dvc,
    edit_params,
    free_port,
    git,
    mlpipe,
    run_id_of,
    sh,
    tracking_client,
    wait_until,
)

from mlpipe.data.frames import read_data_dir
from mlpipe.registry import tags as tag
from mlpipe.runtime.hashing import sha256_file

pytestmark = pytest.mark.integration


def lock(root: Path) -> dict:
    return yaml.safe_load((root / "dvc.lock").read_text())


def data_md5(root: Path) -> str:
    return yaml.safe_load((root / "data.dvc").read_text())["outs"][0]["md5"]


def manifest(root: Path) -> dict:
    return json.loads((root / "artifacts/model/manifest.json").read_text())


def test_main_job_runs_every_stage_and_prints_the_summary(first_run):
    root, proc = first_run
    assert "mlpipe run: trained a new model" in proc.stdout
    assert "stages run:    validate, split, train, evaluate" in proc.stdout
    assert "flights-late version 1 [challenger, champion]" in proc.stdout
    assert (
        "gate:          promoted; champion is version 1" in proc.stdout
    )  # a first model needs data + infra only
    # its infra figures were measured beside evaluate and the MLflow logging, by the probe task
    assert (
        "event=gate_probe " in proc.stdout + proc.stderr and 'measured="before registration"' in proc.stderr
    )
    assert data_md5(root) in proc.stdout
    warned = [line for line in (proc.stdout + proc.stderr).splitlines() if "WARNING" in line]
    assert not warned, f"a warning in every run's log: {warned}"
    assert (root / ".dvcstore").is_dir(), "bootstrap pushes to the project-local DVC remote"
    assert git(root, "status", "--porcelain") == "", (
        "the run commits data.dvc, then dvc.lock and metrics.json"
    )
    log = git(root, "log", "--format=%s")
    assert log.splitlines()[:2] == [
        f"pipeline: outputs for data md5 {data_md5(root)}",
        f"data: initial period 2013-01-01..2013-01-15 (md5 {data_md5(root)})",
    ]


def test_mlflow_run_carries_lineage_params_metrics_inputs_and_model(first_run, tmp_path):
    root, _ = first_run
    client = tracking_client(root)
    exp = client.get_experiment_by_name("mlpipe")
    (run,) = client.search_runs([exp.experiment_id])
    tags, params, metrics = run.data.tags, run.data.params, run.data.metrics
    source_commit = git(root, "rev-parse", "HEAD")  # data and outputs were committed before tracking
    assert tags[tag.GIT_COMMIT] == tags["mlflow.source.git.commit"] == source_commit
    assert tags["mlpipe.git_dirty"] == "false"
    assert tags["mlpipe.data_md5"] == data_md5(root)
    assert (
        tags[tag.MODEL_SHA256]
        == manifest(root)["model_sha256"]
        == sha256_file(root / "artifacts/model/model.skops")
    )
    # every stage output's md5 in one artifact; the three read later as short tags, no tag per output
    outputs = {
        stage: {o["path"]: o["md5"] for o in body["outs"]} for stage, body in lock(root)["stages"].items()
    }
    recorded = json.loads(
        Path(
            client.download_artifacts(run.info.run_id, "lineage/dvc_outputs.json", str(tmp_path))
        ).read_text()
    )
    assert recorded == outputs
    assert not [k for k in tags if k.startswith("mlpipe.dvc.")]
    assert tags["mlpipe.profile"] == outputs["validate"]["artifacts/validate/profile.json"]
    assert tags["mlpipe.trainset"] == outputs["split"]["artifacts/split/train.parquet"]
    assert tags["mlpipe.testset"] == outputs["split"]["artifacts/split/test.parquet"]
    assert len(tags["mlpipe.uv_lock"]) == 64
    assert tags["mlpipe.version.scikit-learn"] and tags["mlpipe.user"] and tags["mlpipe.host"]
    assert params["seed"] == "42" and params["train.hyperparams.max_iter"] == "40"
    assert params["dataset.initial_period.start"] == "2013-01-01"
    # operations settings are no MLflow params: they are in the run's params.yaml artifact, every value
    assert not [k for k in params if k.split(".")[0] in {"retrain", "deploy", "monitor", "sweep", "gate"}]
    assert params["features.categorical"] == "carrier, origin, dest"  # a list on one line
    logged_yaml = client.download_artifacts(run.info.run_id, "mlpipe/params.yaml", str(tmp_path))
    assert Path(logged_yaml).read_text() == (root / "params.yaml").read_text()
    # the run spans the pipeline, not its logging step: it starts before the outputs' commit (made after the
    # stages, before tracking) and ends after its gate
    outputs_committed = int(git(root, "log", "-1", "--format=%ct", "--grep", "pipeline: outputs"))
    assert run.info.start_time // 1000 <= outputs_committed
    on_disk = json.loads((root / "metrics.json").read_text())
    assert metrics["roc_auc"] == pytest.approx(on_disk["roc_auc"]) and 0.5 < metrics["roc_auc"] <= 1

    split_md5 = {o["path"]: o["md5"] for o in lock(root)["stages"]["split"]["outs"]}
    inputs = {d.dataset.name: d for d in run.inputs.dataset_inputs}
    assert set(inputs) == {"train", "test"}
    for name in ("train", "test"):
        ds = inputs[name].dataset
        assert ds.digest == split_md5[f"artifacts/split/{name}.parquet"]
        assert f"artifacts/split/{name}.parquet" in ds.source and source_commit in ds.source

    (version,) = client.search_model_versions("name = 'flights-late'")
    assert version.run_id == run.info.run_id and str(version.version) == "1"
    assert version.tags["mlpipe.data_md5"] == data_md5(root)
    model_id = version.source.removeprefix("models:/")  # the logged model holds the one copy
    logged = {a.path for a in client.list_logged_model_artifacts(model_id)}
    assert {"model.skops", "manifest.json", "MLmodel"} <= logged, logged
    # the test metrics are the logged model's too, measured on the test split: its "datasets used"
    linked = {(m.key, m.dataset_name, m.dataset_digest) for m in client.get_logged_model(model_id).metrics}
    assert ("roc_auc", "test", split_md5["artifacts/split/test.parquet"]) in linked
    validate_art = {a.path for a in client.list_artifacts(run.info.run_id, "mlpipe/validate")}
    assert {"mlpipe/validate/profile.json", "mlpipe/validate/report.md"} <= validate_art


def test_registered_model_predicts_like_the_pipeline_and_never_sees_leakage(first_run):
    import mlflow
    import mlflow.sklearn

    root, _ = first_run
    mlflow.set_tracking_uri(f"sqlite:///{root / 'mlruns' / 'mlflow.db'}")
    model = mlflow.sklearn.load_model("models:/flights-late/1")
    params = yaml.safe_load((root / "params.yaml").read_text())
    test = pd.read_parquet(root / "artifacts/split/test.parquet")
    feats = params["features"]
    leakage = set(feats["leakage"])
    assert leakage <= set(test.columns), "the data carries the leakage columns..."
    assert not leakage & set(model.feature_names_in_), "...and the model never uses them"
    from mlpipe.config import load_params
    from mlpipe.pipeline.features import select_features

    proba = model.predict_proba(select_features(test, load_params(root / "params.yaml").features))[:, 1]
    stored = pd.read_parquet(root / "artifacts/evaluate/predictions.parquet")["proba"].to_numpy()
    assert (proba == stored).all()
    info = mlflow.models.get_model_info("models:/flights-late/1")
    assert not leakage & {c.name for c in info.signature.inputs}
    reqs = (
        Path(mlflow.artifacts.download_artifacts("models:/flights-late/1")) / "requirements.txt"
    ).read_text()
    assert "scikit-learn==" in reqs and "skops==" in reqs


def test_the_registered_version_holds_the_one_copy_of_the_trained_file(first_run):
    """What `mlflow models serve -m models:/NAME@champion` serves is the file the run's sha256 names,
    with its manifest; the run keeps no second copy for mlpipe to load instead."""
    import mlflow

    root, _ = first_run
    mlflow.set_tracking_uri(f"sqlite:///{root / 'mlruns' / 'mlflow.db'}")
    client = tracking_client(root)
    served = Path(mlflow.artifacts.download_artifacts("models:/flights-late@champion"))
    run = client.get_run(client.get_model_version_by_alias("flights-late", "champion").run_id)
    assert sha256_file(served / "model.skops") == run.data.tags[tag.MODEL_SHA256]
    assert sha256_file(served / "model.skops") == sha256_file(root / "artifacts/model/model.skops")
    assert (served / "manifest.json").read_bytes() == (root / "artifacts/model/manifest.json").read_bytes()
    assert not [a.path for a in client.list_artifacts(run.info.run_id, "mlpipe") if a.path == "mlpipe/model"]


def test_mlflow_shows_a_model_training_experiment_with_described_runs_and_linked_versions(first_run):
    """As a person opens MLflow: the experiment in the model-training view, the run described (data,
    batches, code, how to reproduce, the gate's decision) and its version and logged model with it, the
    logged model naming its registered version, its source `mlpipe run` (not `__main__.py`), and the
    derived seed named as such beside the param `seed`."""
    import json

    root, _ = first_run
    client = tracking_client(root)
    mv = client.get_model_version_by_alias("flights-late", "champion")
    run = client.get_run(mv.run_id)
    exp = client.get_experiment(run.info.experiment_id)
    assert exp.tags["mlflow.experimentKind"] == "custom_model_development"
    view = json.loads(exp.tags["mlflow.sharedViewState.mlpipe-headline"])  # the run table's saved view
    assert {"metrics.`roc_auc`", "metrics.`average_precision`"} <= set(
        json.loads(view["state"])["selectedColumns"]
    )
    note = run.data.tags["mlflow.note.content"]
    logged = client.get_logged_model(run.data.tags["mlpipe.model"].removeprefix("models:/"))
    assert run.data.tags["mlpipe.data_md5"] in note and run.data.tags[tag.GIT_COMMIT] in note
    assert f"mlpipe reproduce {run.info.run_id}" in note and "train /" in note
    # the description opens with the decision and every criterion's value, bound and verdict as a table
    first = note.splitlines()[0]
    assert first == f"**Gate: promoted (every check passed)** (version {mv.version})"
    assert "| criterion | value | bound | verdict |" in note and "| infra.load_s | " in note
    assert not [k for k in run.data.metrics if k.startswith("gate.")]  # a bound is no measurement
    assert run.info.run_name == f"v{mv.version} · first run · 2013-01-01..2013-01-14", run.info.run_name
    assert run.data.tags["mlpipe.champion"] == "champion"
    assert logged.name == f"flights-late-v{mv.version}"
    assert {"name": "flights-late", "version": str(mv.version)} in json.loads(
        logged.tags["mlflow.modelVersions"]
    )
    # the same description, with the gate's decision, on the version and the logged model's pages; the
    # version's opens with a plain line (the registry's table shows its first line as text)
    assert note == logged.tags["mlflow.note.content"]
    assert mv.description == f"Gate: promoted (every check passed)\n\n{note.split(chr(10), 1)[1].lstrip()}"
    assert "`champion`: the version `mlpipe serve` serves" in client.get_registered_model(mv.name).description
    assert run.data.tags["mlflow.source.name"] == logged.tags["mlflow.source.name"] == "mlpipe run"
    assert logged.tags["mlflow.source.git.commit"] == run.data.tags[tag.GIT_COMMIT]  # the project's commit
    assert int(run.data.tags["mlpipe.seed.train_derived"]) == int(run.data.params["seed"]) + 2


def test_dvc_repro_after_the_main_job_runs_nothing(first_run):
    root, _ = first_run
    proc = dvc(root, "repro")
    assert "Running stage" not in proc.stdout
    assert git(root, "status", "--porcelain") == ""


def test_unchanged_clean_state_is_not_recorded_twice(first_run, project_copy):
    again = mlpipe(project_copy, "run")
    assert "stages run:    none" in again.stdout and "answered before starting the flow" in again.stdout
    assert "nothing to train" in again.stdout and "already recorded" in again.stdout
    assert "Beginning flow run" not in again.stderr, (
        "DVC status and the MLflow record answer it: no flow started"
    )
    client = tracking_client(project_copy)
    assert len(client.search_model_versions("name = 'flights-late'")) == 1
    assert run_id_of(again) == run_id_of(first_run[1])
    # answered from files alone: neither MLflow nor Prefect is imported on the no-op path
    traced = sh([sys.executable, "-X", "importtime", "-m", "mlpipe.cli", "run"], project_copy)
    assert "answered before starting the flow" in traced.stdout
    imported = {line.rsplit("|", 1)[-1].strip() for line in traced.stderr.splitlines() if "|" in line}
    assert not {m for m in imported if m.split(".")[0] in {"mlflow", "prefect", "pandas", "sklearn"}}


def test_the_no_op_answer_is_dropped_when_the_registry_or_store_moves(project_copy):
    # a champion moved by hand: the last run's summary would name stale aliases, so the flow answers
    mlpipe(project_copy, "promote", "models:/flights-late/1", "--reason", "re-promote by hand")
    moved = mlpipe(project_copy, "run")
    assert "nothing to train" in moved.stdout and "answered before starting the flow" not in moved.stdout
    assert "answered before starting the flow" in mlpipe(project_copy, "run").stdout, "the flow kept it"
    # the tracking store deleted: the recorded run is gone, the flow records it anew
    shutil.rmtree(project_copy / "mlruns")
    anew = mlpipe(project_copy, "run")
    assert "answered before starting the flow" not in anew.stdout and "version 1" in anew.stdout


def test_a_new_commit_that_trains_the_same_bytes_registers_no_second_version(first_run, project_copy):
    stage = project_copy / "src/mlpipe/pipeline/stages/train.py"
    stage.write_text(stage.read_text() + "\n# a comment: the code changes, the model does not\n")
    commit_all(project_copy, "train stage: a comment")
    proc = mlpipe(project_copy, "run")
    assert "train" in proc.stdout.split("stages run:")[1].splitlines()[0], proc.stdout
    assert run_id_of(proc) != run_id_of(first_run[1]), "a new commit is a new MLflow run"
    assert "flights-late version 1 " in proc.stdout and "same_model_bytes" in proc.stderr
    # version 1's decision stands: the gate's probe is not started for bytes it has judged
    logs = proc.stdout + proc.stderr
    assert "event=gate_probe_skipped" in logs and "Task run 'probe-" not in logs and "Task run 'gate-" in logs
    client = tracking_client(project_copy)
    assert [str(v.version) for v in client.search_model_versions("name = 'flights-late'")] == ["1"]
    # the new run holds the same bytes as version 1: the next run is a no-op answered before any flow
    # (before, the preflight looked for a version of this run, found none and started the flow every time)
    again = mlpipe(project_copy, "run")
    assert "answered before starting the flow" in again.stdout and run_id_of(again) == run_id_of(proc)


def test_changed_param_reruns_only_the_stages_that_use_it(project_copy):
    edit_params(project_copy, evaluate={"threshold": 0.3})
    proc = dvc(project_copy, "repro")
    assert "Running stage 'evaluate'" in proc.stdout
    for stage in ("validate", "split", "train"):
        assert f"Running stage '{stage}'" not in proc.stdout
    # and back: the run-cache restores the old outputs without training
    edit_params(project_copy, evaluate={"threshold": 0.5})
    proc = dvc(project_copy, "repro")
    assert "Running stage 'train'" not in proc.stdout
    assert git(project_copy, "status", "--porcelain") == ""


def test_dvc_experiment_with_a_train_param(project_copy):
    proc = dvc(project_copy, "exp", "run", "-S", "train.hyperparams.max_iter=15")
    assert "Running stage 'train'" in proc.stdout and "Running stage 'split'" not in proc.stdout
    shown = json.loads(dvc(project_copy, "exp", "show", "--json").stdout)
    exps = [e for rev in shown for e in (rev.get("experiments") or [])]
    assert exps, "the experiment is listed by dvc exp show"


def test_bad_batch_stops_at_validate_naming_column_rule_and_count(project_copy):
    root = project_copy
    model_before = sha256_file(root / "artifacts/model/model.skops")
    good = read_data_dir(root / "data")
    bad = good.head(50).copy()
    bad.loc[bad.index[:7], "distance"] = -5
    bad.loc[bad.index[:3], "carrier"] = None
    bad = bad.drop(columns=["temp"])
    bad.to_parquet(root / "data" / "batch-2013-01-zz-bad.parquet", index=False)
    # a file put into data/ by hand is refused unless accepted on purpose: accepted, validate judges it
    mlpipe(root, "data", "accept", "--reason", "a broken file, to see validate stop it")
    proc = mlpipe(root, "run", check=False)
    assert proc.returncode != 0
    err = proc.stderr
    name = "batch-2013-01-zz-bad.parquet"
    assert f"{name}: distance: below min 1.0: 7 offending (e.g. -5.0)" in err
    assert f"{name}: carrier: null where none are allowed: 3 offending" in err
    assert f"{name}: temp: required column is missing" in err
    assert "batch-2013-01.parquet:" not in err, "the good batch is not blamed"
    assert "nothing was recorded or registered" in err
    assert "FAILED" in (root / "artifacts/validate/report.md").read_text()
    assert sha256_file(root / "artifacts/model/model.skops") == model_before
    client = tracking_client(root)
    assert [str(v.version) for v in client.search_model_versions("name = 'flights-late'")] == ["1"]


def test_bootstrap_twice_gives_the_same_data_hash(project_copy):
    import shutil

    recorded = data_md5(project_copy)
    for path in ("data", ".dvcstore", ".dvc/cache"):
        shutil.rmtree(project_copy / path)
    mlpipe(project_copy, "bootstrap")
    assert data_md5(project_copy) == recorded
    assert git(project_copy, "status", "--porcelain") == ""


def session_commands(sid: int) -> list[str]:
    """Command lines of the live processes in session `sid` (Linux /proc)."""
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
            if int(fields[3]) == sid and fields[0] != "Z":
                found.append((stat.parent / "cmdline").read_bytes().replace(b"\0", b" ").decode())
        except (OSError, IndexError, ValueError):
            continue
    return found


def test_mlpipe_ui_shows_the_run_and_model_on_loopback(first_run):
    """`mlpipe ui` serves this project's store on 127.0.0.1; the run and its registered model are there."""
    import sys
    import urllib.request

    from mlpipe.runtime.localserver import launch, wait_answering
    from mlpipe.runtime.shell import stop_process_group, tool_env

    root, _ = first_run
    port = free_port()
    env = tool_env()
    env.pop("MLFLOW_TRACKING_URI", None)
    proc = launch(
        [sys.executable, "-m", "mlpipe.cli", "ui", "--port", str(port)],
        root,
        env,
        root / ".mlpipe" / f"ui-{port}.log",
    )
    base = f"http://127.0.0.1:{port}"
    try:
        wait_answering(proc, f"{base}/health", timeout_s=180)
        # one server worker and no MLflow job runner: two processes (mlflow ui, its uvicorn worker) below ours
        below = session_commands(proc.pid)
        assert len(below) == 3 and not any("huey" in c for c in below), below
        req = urllib.request.Request(
            f"{base}/api/2.0/mlflow/runs/search",
            method="POST",
            data=json.dumps({"experiment_ids": ["1"]}).encode(),
            headers={"Content-Type": "application/json"},
        )
        with urllib.request.urlopen(req, timeout=10) as r:
            runs = json.load(r)["runs"]
        tags = {t["key"]: t["value"] for t in runs[0]["data"]["tags"]}
        assert tags["mlpipe.data_md5"] == data_md5(root)
        with urllib.request.urlopen(
            f"{base}/api/2.0/mlflow/registered-models/get?name=flights-late", timeout=10
        ) as r:
            assert (
                json.load(r)["registered_model"]["latest_versions"][0]["run_id"] == runs[0]["info"]["run_id"]
            )
        with urllib.request.urlopen(f"{base}/", timeout=10) as r:
            assert b"MLflow" in r.read()
        # the address it prints opens the run table in the model-training view with mlpipe's metric columns
        # ... printed once the server answers, never before
        printed = (
            f"MLflow UI on {base}/#/experiments/1/runs?workflowType=machine_learning"
            "&viewStateShareKey=mlpipe-headline "
        )
        wait_until(lambda: printed in proc.log_path.read_text(), 30)
        log = proc.log_path.read_text()
        assert log.index("starting the MLflow UI (port") < log.index(printed)
    finally:
        stop_process_group(proc)


def test_a_params_only_run_reports_no_batch_drift(project_copy):
    # A changed feature list trains a new model on the same data: no batch was taken in, so the run has
    # no batch drift (the last batch's report is neither shown nor logged again).
    doc = yaml.safe_load((project_copy / "params.yaml").read_text())
    numerical = [c for c in doc["features"]["numerical"] if c != "visib"]
    ranges = {k: v for k, v in doc["validate"]["ranges"].items() if k != "visib"}
    edit_params(project_copy, features={"numerical": numerical}, validate={"ranges": ranges})
    commit_all(project_copy, "features: without visib")
    proc = mlpipe(project_copy, "run")
    assert "mlpipe run: trained a new model" in proc.stdout and "accepted none" in proc.stdout
    assert "drift share:   None (no new batch: no batch drift)" in proc.stdout
    run = tracking_client(project_copy).get_run(run_id_of(proc))
    assert tracking_client(project_copy).list_artifacts(run.info.run_id, "drift") == []
    assert "drift_share" not in run.data.metrics
