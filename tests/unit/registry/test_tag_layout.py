"""Tag keys a person can read on MLflow's run page: the md5 of every stage output is one artifact plus
three short tags (not a tag per output, `mlpipe.dvc.split.artifac…`), and keys with a hash for value fit
in 15 characters (`mlpipe.commit`, not `mlpipe.git_…`). Runs logged before, with one tag per output and
the long keys, are still read by the service's profile check, the monitor, reproduce and lineage, and
still found by the searches for a run's identity (`find_recorded_run`) and a model's bytes
(`versions_holding`)."""

from __future__ import annotations

import json

import pytest
import yaml

from mlpipe.config import ProjectPaths
from mlpipe.errors import ModelRefused
from mlpipe.registry import tags as tag
from mlpipe.registry.client import mlflow_client
from mlpipe.registry.models import PROFILE_ARTIFACT, load_profile, logged_model_uri, versions_holding
from mlpipe.registry.refs import resolve_run
from mlpipe.registry.reproduce.record import read_record
from mlpipe.registry.tracking import IDENTITY_KEYS, find_recorded_run, lineage_tags

OUTPUTS = {
    "validate": {"artifacts/validate/profile.json": "p" * 32, "artifacts/validate/report.md": "r" * 32},
    "split": {
        "artifacts/split/train.parquet": "a" * 32,
        "artifacts/split/test.parquet": "b" * 32,
        "artifacts/split/split.json": "s" * 32,
    },
    "train": {"artifacts/model": "m" * 32 + ".dir"},
}
# One tag per stage output, as runs logged before the artifact carry them.
OLD_LAYOUT = {
    f"mlpipe.dvc.{stage}.{path}": md5 for stage, outs in OUTPUTS.items() for path, md5 in outs.items()
}
UI_KEY_LIMIT = 15  # MLflow 3.17 KeyValueTag: a key cut beside a value, both over charLimit 30 / 2


def write_lock(root, outputs=OUTPUTS):
    stages = {
        s: {"outs": [{"path": p, "hash": "md5", "md5": m} for p, m in o.items()]} for s, o in outputs.items()
    }
    (root / "dvc.lock").write_text(yaml.safe_dump({"schema": "2.0", "stages": stages}))


def test_a_run_carries_three_short_output_tags_not_one_tag_per_output(tmp_path):
    write_lock(tmp_path)
    (tmp_path / "uv.lock").write_text("version = 1\n")
    tags = lineage_tags(
        ProjectPaths(tmp_path), {"model_sha256": "f" * 64, "params_sha256": "e" * 64, "seed": 44}
    )
    assert not [k for k in tags if k.startswith("mlpipe.dvc.")]
    assert tags[tag.PROFILE_MD5] == "p" * 32
    assert tags[tag.TRAINSET_MD5] == "a" * 32 and tags[tag.TESTSET_MD5] == "b" * 32
    assert len(tags[tag.UV_LOCK_SHA256]) == 64
    cut = [k for k, v in tags.items() if len(k) > UI_KEY_LIMIT and len(v) > UI_KEY_LIMIT]
    assert not cut, f"tag keys the run page cuts: {cut}"


def test_the_new_keys_fit_the_run_page():
    for key in [*tag.DVC_OUTPUT_TAGS, tag.UV_LOCK_SHA256, tag.MODEL_URI, *IDENTITY_KEYS]:
        assert len(key) <= UI_KEY_LIMIT, key


def test_an_old_run_is_read_through_its_old_keys():
    old = {**OLD_LAYOUT, "mlpipe.uv_lock_sha256": "u" * 64, "mlpipe.model_uri": "models:/m-1"}
    assert tag.read(old, tag.PROFILE_MD5) == "p" * 32
    assert tag.read(old, tag.TRAINSET_MD5) == "a" * 32
    assert tag.read(old, tag.UV_LOCK_SHA256) == "u" * 64
    assert tag.read(old, tag.MODEL_URI) == "models:/m-1"
    assert tag.legacy_dvc_outputs(old) == OUTPUTS
    new = {tag.PROFILE_MD5: "q" * 32, tag.MODEL_URI: "models:/m-2"}
    assert tag.read(new, tag.PROFILE_MD5) == "q" * 32 and tag.read(new, tag.MODEL_URI) == "models:/m-2"
    assert tag.read({}, tag.TRAINSET_MD5) is None and tag.read({}, tag.MODEL_URI, "") == ""
    assert tag.legacy_dvc_outputs(new) == {}


@pytest.fixture
def store(tmp_path):
    client = mlflow_client(f"sqlite:///{tmp_path / 'mlflow.db'}")
    return client, client.create_experiment("e", artifact_location=(tmp_path / "artifacts").as_uri())


def logged_run(client, exp, tags, profile: bytes | None = None, outputs: dict | None = None) -> str:
    run_id = client.create_run(exp, tags={tag.MODEL_SHA256: "f" * 64, **tags}).info.run_id
    if profile is not None:
        client.log_text(run_id, profile.decode(), PROFILE_ARTIFACT)
    if outputs is not None:
        client.log_dict(run_id, outputs, tag.DVC_OUTPUTS_ARTIFACT)
    client.set_terminated(run_id)
    return run_id


def logged(client, exp, tags, profile: bytes | None = None):
    """The run logged_run logs, as read from the store (what load_profile is given)."""
    return client.get_run(logged_run(client, exp, tags, profile))


def test_the_service_checks_the_profile_by_the_short_tag_or_an_old_runs_long_one(store):
    import hashlib

    client, exp = store
    profile = json.dumps({"columns": {}}).encode()
    md5 = hashlib.md5(profile).hexdigest()
    old_key = tag.LEGACY_KEYS[tag.PROFILE_MD5]
    assert load_profile(client, logged(client, exp, {tag.PROFILE_MD5: md5}, profile)) == {"columns": {}}
    assert load_profile(client, logged(client, exp, {old_key: md5}, profile)) == {"columns": {}}
    for key in (tag.PROFILE_MD5, old_key):  # the recorded md5 is really compared, under either key
        with pytest.raises(ModelRefused, match="recorded at training"):
            load_profile(client, logged(client, exp, {key: "0" * 32}, profile))


def test_reproduce_and_lineage_read_every_output_from_the_artifact_or_an_old_runs_tags(store):
    client, exp = store
    expected = {f"{s}:{p}": m for s, outs in OUTPUTS.items() for p, m in outs.items()}
    new = logged_run(client, exp, {tag.TRAINSET_MD5: "a" * 32}, outputs=OUTPUTS)
    old = logged_run(client, exp, OLD_LAYOUT)
    assert read_record(client, new).stage_outputs == expected
    assert read_record(client, old).stage_outputs == expected
    assert read_record(client, logged_run(client, exp, {})).stage_outputs == {}


def test_the_logged_model_of_an_old_run_is_found_by_its_old_key(store):
    client, exp = store
    old = logged_run(client, exp, {"mlpipe.model_uri": "models:/m-old"})
    new = logged_run(client, exp, {tag.MODEL_URI: "models:/m-new"})
    assert logged_model_uri(resolve_run(client, old)) == "models:/m-old"
    assert logged_model_uri(resolve_run(client, new)) == "models:/m-new"


def test_an_old_runs_long_identity_keys_are_read_and_searched(store):
    client, exp = store
    identity = {tag.GIT_COMMIT: "c" * 40, tag.DATA_MD5: "d" * 32, tag.MODEL_SHA256: "f" * 64}
    identity[tag.PARAMS_SHA256] = "e" * 64
    old_keys = {tag.LEGACY_KEYS.get(k, k): v for k, v in identity.items()}
    assert set(old_keys) >= {"mlpipe.git_commit", "mlpipe.model_sha256", "mlpipe.params_sha256"}
    old = client.create_run(exp, tags={**old_keys, tag.GIT_DIRTY: "false"}).info.run_id
    client.set_terminated(old)
    assert tag.read(client.get_run(old).data.tags, tag.GIT_COMMIT) == "c" * 40
    assert read_record(client, old).model_sha256 == "f" * 64 and read_record(client, old).commit == "c" * 40
    built = {**identity, tag.GIT_DIRTY: "false"}  # what lineage_tags builds for the same model now
    assert find_recorded_run(client, exp, built).info.run_id == old
    new = client.create_run(exp, tags=built).info.run_id
    client.set_terminated(new)
    assert find_recorded_run(client, exp, built).info.run_id == new  # the current keys first
    assert find_recorded_run(client, exp, {**built, tag.MODEL_SHA256: "0" * 64}) is None

    client.create_registered_model("m")
    client.create_model_version("m", "file:///x", run_id=old, tags={"mlpipe.model_sha256": "f" * 64})
    client.create_model_version("m", "file:///y", run_id=new, tags={tag.MODEL_SHA256: "f" * 64})
    client.create_model_version("m", "file:///z", run_id=new, tags={tag.MODEL_SHA256: "0" * 64})
    assert sorted(str(v.version) for v in versions_holding(client, "m", "f" * 64)) == ["1", "2"]
