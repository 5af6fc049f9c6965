"""data/ changes only through batches: a batch goes in under its own name, its landing file is deleted only
once its rows are proven in the commit, and a change by hand is restored with DVC or refused in one line."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
import yaml

from mlpipe.config import ProjectPaths
from mlpipe.data.frames import read_data_dir, write_frame
from mlpipe.data.landing import BatchVerdict, take_batches
from mlpipe.data.recorded import (
    DataStatus,
    accept_as_is,
    consume_taken_before,
    keep_as_recorded,
    left_by_interrupted_run,
    parse_status,
    refusal,
    unproven,
)
from mlpipe.data.snapshot import added_message
from mlpipe.errors import DataError
from mlpipe.runtime.git import git_last_trailers

DVC = str(Path(sys.executable).parent / "dvc")


def run(root: Path, *args: str) -> str:
    return subprocess.run(args, cwd=root, check=True, capture_output=True, text=True).stdout


def git_repo(root: Path) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    run(root, "git", "init", "-q", "-b", "main")
    run(root, "git", "config", "user.email", "t@mlpipe.test")
    run(root, "git", "config", "user.name", "t")
    return root


def commit_data_dvc(root: Path, md5: str, message: str = "") -> None:
    (root / "data.dvc").write_text(yaml.safe_dump({"outs": [{"md5": md5, "path": "data"}]}))
    run(root, "git", "add", "data.dvc")
    run(root, "git", "commit", "-qm", message or f"data: {md5}")


# ---- every landed file goes in under its own name, its rows once ----------------------------------------


def test_two_files_of_one_stem_and_a_copy_go_in_once_each_under_names_nobody_holds(
    make_frame, params, tmp_path
):
    data, landing, qdir = tmp_path / "data", tmp_path / "landing", tmp_path / "quarantine"
    landing.mkdir()
    write_frame(make_frame(40, seed=1), data / "b2.parquet")  # taken in by an earlier run
    csv, parquet = make_frame(30, seed=2, start="2013-02-01"), make_frame(20, seed=3, start="2013-03-01")
    csv.to_csv(landing / "b2.csv", index=False)
    write_frame(parquet, landing / "b2.parquet")
    (landing / "b2-copy.csv").write_bytes((landing / "b2.csv").read_bytes())  # the same file landed twice
    verdicts = [
        BatchVerdict(landing / n, r) for n, r in [("b2-copy.csv", 30), ("b2.csv", 30), ("b2.parquet", 20)]
    ]

    taken = take_batches(verdicts, params, data, qdir)

    assert [t.data_file.name for t in taken] == ["b2-copy.parquet", "b2-copy.parquet", "b2-1.parquet"]
    assert [t.same_as for t in taken] == [None, "b2-copy.csv", None]
    assert len(read_data_dir(data)) == 40 + 30 + 20, "every landed row once, the earlier b2 untouched"
    pd.testing.assert_frame_equal(pd.read_parquet(data / "b2-1.parquet"), parquet)
    subject, trailers = added_message(taken, "abc.dir").split("\n\n")
    assert subject == (
        "data: add b2-copy.csv -> b2-copy.parquet (30 rows), b2.csv (the same file as b2-copy.csv, taken "
        "once as b2-copy.parquet), b2.parquet -> b2-1.parquet (20 rows) (md5 abc.dir)"
    )
    assert trailers.splitlines() == [
        f"Landed-Batch: {taken[0].sha256} b2-copy.parquet 30 b2-copy.csv",
        f"Landed-Batch: {taken[2].sha256} b2-1.parquet 20 b2.parquet",
    ]


def test_a_batch_taken_in_under_its_own_name_is_named_once(make_frame, params, tmp_path):
    data, landing = tmp_path / "data", tmp_path / "landing"
    write_frame(make_frame(12, seed=2, start="2013-02-01"), landing / "batch-2013-02-01.parquet")
    taken = take_batches(
        [BatchVerdict(landing / "batch-2013-02-01.parquet", 12)], params, data, tmp_path / "q"
    )
    assert added_message(taken, "m").splitlines()[0] == "data: add batch-2013-02-01.parquet (12 rows) (md5 m)"


def test_a_landing_file_is_proven_only_by_its_rows_in_the_committed_snapshot(make_frame, params, tmp_path):
    root = git_repo(tmp_path / "project")
    data, landing = root / "data", root / "landing"
    write_frame(make_frame(25, seed=4), landing / "b.parquet")
    (taken,) = take_batches([BatchVerdict(landing / "b.parquet", 25)], params, data, root / "quarantine")
    commit_data_dvc(root, "new.dir")
    assert unproven(root, [taken], "new.dir") == {}

    assert unproven(root, [taken], "other.dir") == {
        "b.parquet": "the commit's data.dvc records md5 new.dir, not the snapshot's other.dir"
    }
    write_frame(make_frame(24, seed=4), data / "b.parquet")  # not the rows that were taken
    assert unproven(root, [taken], "new.dir") == {"b.parquet": "data/b.parquet holds 24 rows, not 25"}
    (data / "b.parquet").unlink()
    assert unproven(root, [taken], "new.dir") == {"b.parquet": "data/b.parquet holds no file, not 25"}


def test_a_landing_file_the_last_commit_took_in_is_deleted_by_the_next_run(make_frame, params, tmp_path):
    """A run killed between its commit and deleting the landing file: the next one finds the file (same name,
    same bytes) in the commit's trailers and its rows in data/, and deletes it instead of refusing it as
    rows already in data/."""
    root = git_repo(tmp_path / "project")
    data, landing = root / "data", root / "landing"
    write_frame(make_frame(25, seed=4), landing / "b.csv.parquet")
    write_frame(make_frame(9, seed=5), landing / "c.parquet")
    verdicts = [BatchVerdict(landing / n, r) for n, r in [("b.csv.parquet", 25), ("c.parquet", 9)]]
    taken = take_batches(verdicts, params, data, root / "quarantine")
    commit_data_dvc(root, "new.dir", added_message(taken, "new.dir"))
    write_frame(make_frame(9, seed=6), landing / "c.parquet")  # landed again since: other bytes, not taken
    paths = ProjectPaths(root)

    assert consume_taken_before(paths, params) == [
        "landing/b.csv.parquet: already in data/ as b.csv.parquet (25 rows, committed by a run interrupted "
        "before deleting it): deleted"
    ]
    assert sorted(p.name for p in landing.iterdir()) == ["c.parquet"]
    assert consume_taken_before(paths, params) == []


# ---- data/ as data.dvc records it ------------------------------------------------------------------------


def test_dvc_status_is_read_per_file_of_data():
    doc = {
        "not_in_cache": ["data/a.parquet", "other/x"],
        "uncommitted": {
            "modified": ["data/", "data/b.parquet"],
            "added": ["data/notes.parquet"],
            "deleted": ["data/a.parquet"],
        },
    }
    status = parse_status(doc)
    assert status == DataStatus(("a.parquet",), ("b.parquet",), ("notes.parquet",), ("a.parquet",), False)
    assert status.describe() == "deleted a.parquet; modified b.parquet; added notes.parquet"
    assert parse_status({"not_in_cache": ["data/"]}).listing_missing and parse_status({}).clean


def test_the_refusal_names_every_file_how_it_differs_and_how_to_accept_it():
    status = DataStatus(deleted=("batch-2013-06-01.parquet",), added=("notes.parquet",))
    line = refusal(status, ["notes.parquet"], ["batch-2013-06-01.parquet"])
    assert "\n" not in line
    assert line == (
        "data/ differs from data.dvc in a way no batch explains: batch-2013-06-01.parquet deleted and in "
        "neither the DVC cache nor the remote, notes.parquet added by hand (rule: data/ changes only through "
        "batches; land a file added by hand as a batch: move it out of data/, then mlpipe ingest FILE; to "
        'keep data/ as it is on purpose: mlpipe data accept --reason "...")'
    )


def test_only_files_named_for_a_waiting_batch_count_as_left_by_an_interrupted_run():
    added = ("b2.parquet", "b2-1.parquet.tmp", "notes.parquet")
    assert left_by_interrupted_run(added, ["b2.csv"]) == ["b2.parquet", "b2-1.parquet.tmp"]
    assert left_by_interrupted_run(added, []) == []


@pytest.fixture
def dvc_project(tmp_path) -> ProjectPaths:
    """A git + DVC project whose data/ (three small files) is snapshotted, pushed and committed."""
    root = git_repo(tmp_path / "project")
    run(root, DVC, "init", "-q")
    run(root, DVC, "remote", "add", "-d", "local", str(tmp_path / "remote"))
    for name in ("a", "b", "c"):
        (root / "data").mkdir(exist_ok=True)
        (root / "data" / f"{name}.parquet").write_text(f"rows of {name}\n" * 50)
    (root / ".gitignore").write_text("/landing/\n/quarantine/\n")
    run(root, DVC, "add", "-q", "data")
    run(root, DVC, "push", "-q")
    run(root, "git", "add", "-A")
    run(root, "git", "commit", "-qm", "data")
    return ProjectPaths(root)


def _cached(root: Path, text: str) -> list[Path]:
    import hashlib

    md5 = hashlib.md5(text.encode()).hexdigest()
    return [
        d / "files" / "md5" / md5[:2] / md5[2:] for d in (root / ".dvc" / "cache", root.parent / "remote")
    ]


def test_a_change_by_hand_is_restored_from_dvc_or_refused_without_touching_data(dvc_project, params):
    paths, data = dvc_project, dvc_project.data
    a_text = (data / "a.parquet").read_text()
    assert keep_as_recorded(paths, params) == [], "as recorded: nothing to do"

    (data / "a.parquet").unlink()
    (data / "b.parquet").write_text("rows of b\n" * 10)  # truncated
    assert keep_as_recorded(paths, params) == [
        "data/: restored a.parquet from the DVC cache (it differed from data.dvc: deleted)",
        "data/: restored b.parquet from the DVC cache (it differed from data.dvc: modified; the edited copy "
        "is in quarantine/edited/b.parquet)",
    ]
    assert (data / "a.parquet").read_text() == a_text
    assert (data / "b.parquet").read_text() == "rows of b\n" * 50
    assert (paths.root / "quarantine" / "edited" / "b.parquet").read_text() == "rows of b\n" * 10, "kept"

    # an interrupted run's file for a waiting batch goes aside; a file added by hand refuses, nothing touched
    (paths.root / "landing").mkdir()
    (paths.root / "landing" / "b2.csv").write_text("x\n1\n")
    (data / "b2.parquet").write_text("half a batch")
    (data / "a.parquet").unlink()
    (data / "notes.parquet").write_text("mine")
    with pytest.raises(
        DataError, match=r"a.parquet deleted, notes.parquet added by hand \(rule: data/ changes"
    ):
        keep_as_recorded(paths, params)
    assert sorted(p.name for p in data.iterdir()) == ["b.parquet", "b2.parquet", "c.parquet", "notes.parquet"]
    (data / "notes.parquet").unlink()

    cache, remote = _cached(paths.root, a_text)
    cache.unlink()  # only the remote has it
    assert keep_as_recorded(paths, params) == [
        "data/: moved b2.parquet to quarantine/interrupted/b2.parquet (written by an interrupted run for a "
        "batch still waiting: taken in again)",
        "data/: restored a.parquet from the DVC remote (it differed from data.dvc: deleted)",
    ]
    assert (paths.root / "quarantine" / "interrupted" / "b2.parquet").read_text() == "half a batch"

    (data / "a.parquet").unlink()
    cache.unlink()
    remote.unlink()  # gone from everywhere: DVC's checkout would now delete data/ whole; never run it
    with pytest.raises(DataError, match="a.parquet deleted and in neither the DVC cache nor the remote"):
        keep_as_recorded(paths, params)
    assert sorted(p.name for p in data.iterdir()) == ["b.parquet", "c.parquet"], "nothing touched"

    line = accept_as_is(paths, "  a.parquet was   a test month ")
    assert line.startswith("accepted data/ as it is: deleted a.parquet; md5 ")
    subject = run(paths.root, "git", "log", "-1", "--format=%s").strip()
    assert subject.startswith("data: accept deleted a.parquet (reason: a.parquet was a test month) (md5 ")
    assert git_last_trailers(paths.root, "data.dvc", "Data-Accepted-Reason") == ["a.parquet was a test month"]
    assert keep_as_recorded(paths, params) == [] and run(paths.root, "git", "status", "--porcelain") == ""
    assert accept_as_is(paths, "again").endswith(": nothing to accept")
    with pytest.raises(DataError, match="--reason is empty"):
        accept_as_is(paths, "  ")


def test_a_bootstrap_that_cannot_rebuild_the_recorded_data_keeps_the_record_and_refuses(
    dvc_project, params, monkeypatch
):
    """All of data/ deleted, part of it gone from the cache and the remote: rebuilding from the source gives
    other data, which is never snapshotted as if nothing happened."""
    from mlpipe.data import snapshot

    paths, data = dvc_project, dvc_project.data
    recorded = (paths.root / "data.dvc").read_text()
    for path in _cached(paths.root, (data / "a.parquet").read_text()):
        path.unlink()
    for f in data.iterdir():
        f.unlink()
    monkeypatch.setattr(
        snapshot, "materialise_initial_period", lambda p, _: (p.data / "a.parquet").write_text("the source\n")
    )
    with pytest.raises(DataError, match=r"data/: data.dvc records md5 \w+.dir, which neither the DVC cache"):
        snapshot.bootstrap(paths, params)
    assert (paths.root / "data.dvc").read_text() == recorded, "the record stays"
    with pytest.raises(DataError, match="a.parquet modified and in neither the DVC cache nor the remote"):
        keep_as_recorded(paths, params)
