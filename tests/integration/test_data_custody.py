"""data/ changes only through batches (issue 28.2): a file deleted by hand is restored from DVC and the run
says so; one DVC cannot restore, or a file added by hand, refuses the run until the change is accepted on
purpose, with a reason. (Every landed file going in under its own name, issue 28.1: test_own_data.py.)"""

from __future__ import annotations

import pytest
import yaml
from conftest import git, mlpipe, tracking_client

from mlpipe.data.frames import read_data_dir, write_frame

pytestmark = pytest.mark.integration
MODEL = "flights-late"


def data_md5(root) -> str:
    return yaml.safe_load((root / "data.dvc").read_text())["outs"][0]["md5"]


def versions(root) -> list[str]:
    return sorted(str(v.version) for v in tracking_client(root).search_model_versions(f"name = '{MODEL}'"))


def _rm_from_dvc(root, name: str) -> None:
    """Delete data/<name> and its content from the DVC cache and the remote: nothing can restore it."""
    import hashlib

    md5 = hashlib.md5((root / "data" / name).read_bytes()).hexdigest()
    for store in (root / ".dvc" / "cache", root / ".dvcstore"):  # the remote: ../.dvcstore from .dvc/
        (store / "files" / "md5" / md5[:2] / md5[2:]).unlink()
    (root / "data" / name).unlink()


def test_a_data_file_deleted_by_hand_is_restored_then_refused_until_accepted(project_copy):
    """Finding 2: `rm data/<file>` then `mlpipe run` restores it from the DVC cache and says so (no new
    model); gone from the cache and the remote too, the run refuses in one line naming it; `mlpipe data
    accept --reason` records the smaller data on purpose."""
    root = project_copy
    names = sorted(p.name for p in (root / "data").glob("*.parquet"))
    gone = names[-1]
    before_md5, before_bytes = data_md5(root), (root / "data" / gone).read_bytes()
    head = git(root, "rev-parse", "HEAD")

    (root / "data" / gone).unlink()
    proc = mlpipe(root, "run")
    assert f"data/: restored {gone} from the DVC cache (it differed from data.dvc: deleted)" in proc.stdout
    assert (root / "data" / gone).read_bytes() == before_bytes and data_md5(root) == before_md5
    assert "nothing to train" in proc.stdout.splitlines()[0] and versions(root) == ["1"]
    assert git(root, "rev-parse", "HEAD") == head, "nothing committed"

    _rm_from_dvc(root, gone)
    write_frame(read_data_dir(root / "data").head(3), root / "data" / "notes.parquet")  # copied in by hand
    refused = mlpipe(root, "run", check=False)
    assert refused.returncode == 1 and versions(root) == ["1"]
    (line,) = [x for x in refused.stderr.splitlines() if x.startswith("mlpipe: ")]
    assert (
        f"data/ differs from data.dvc in a way no batch explains: {gone} deleted and in neither the DVC "
        "cache nor the remote, notes.parquet added by hand (rule: data/ changes only through batches; land "
        "a file added by hand as a batch: move it out of data/, then mlpipe ingest FILE; to keep data/ as it "
        'is on purpose: mlpipe data accept --reason "...")'
    ) in line
    kept = sorted(p.name for p in (root / "data").glob("*.parquet"))
    assert kept == sorted([*names[:-1], "notes.parquet"]), (
        "nothing touched, a file added by hand never deleted"
    )
    (root / "data" / "notes.parquet").unlink()

    accepted = mlpipe(root, "data", "accept", "--reason", "that week's source rows were wrong")
    after_md5 = data_md5(root)
    assert after_md5 != before_md5 and f"md5 {before_md5} -> {after_md5}" in accepted.stdout
    assert git(root, "log", "-1", "--format=%s") == (
        f"data: accept deleted {gone} (reason: that week's source rows were wrong) (md5 {after_md5})"
    )
    assert git(root, "status", "--porcelain") == ""
