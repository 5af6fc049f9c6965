"""A project's new Prefect database is a copy of a migrated, empty one (issue 33): copied only where the
server would make the default database, captured only while it holds nothing of a project's own."""

from __future__ import annotations

import sqlite3

import pytest

from mlpipe.runtime.localserver import (
    PREFECT_DB,
    capture_template,
    holds_only_template_rows,
    prefect_template_path,
    seed_prefect_database,
)


def make_db(path, *, flow_runs: int = 0, migrated: bool = True) -> None:
    """A database shaped like Prefect's: the migrations' version, block types, and a flow_run table."""
    with sqlite3.connect(path) as db:
        if migrated:
            db.execute("CREATE TABLE alembic_version (version_num TEXT)")
            db.execute("INSERT INTO alembic_version VALUES ('head')")
        db.execute("CREATE TABLE block_type (name TEXT)")
        db.execute("INSERT INTO block_type VALUES ('secret')")
        db.execute("CREATE TABLE flow_run (id TEXT)")
        db.executemany("INSERT INTO flow_run VALUES (?)", [(str(i),) for i in range(flow_runs)])
    db.close()


@pytest.fixture
def cache(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.delenv("MLPIPE_PREFECT_TEMPLATE", raising=False)
    for key in [k for k in __import__("os").environ if k.startswith("PREFECT_API_DATABASE_")]:
        monkeypatch.delenv(key)
    return tmp_path / "cache"


def test_template_is_per_prefect_version_in_the_user_cache(cache, monkeypatch):
    import importlib.metadata

    path = prefect_template_path()
    assert path == cache / "mlpipe" / f"prefect-{importlib.metadata.version('prefect')}.db"
    monkeypatch.setenv("MLPIPE_PREFECT_TEMPLATE", "0")
    assert prefect_template_path() is None


def test_only_block_types_and_the_version_may_hold_rows(tmp_path):
    make_db(tmp_path / "empty.db")
    make_db(tmp_path / "used.db", flow_runs=1)
    make_db(tmp_path / "unmigrated.db", migrated=False)
    verdicts = {}
    for name in ("empty", "used", "unmigrated"):
        with sqlite3.connect(tmp_path / f"{name}.db") as db:
            verdicts[name] = holds_only_template_rows(db)
        db.close()
    assert verdicts == {"empty": True, "used": False, "unmigrated": False}


def test_capture_keeps_an_empty_database_and_refuses_a_used_one(tmp_path, cache):
    template = prefect_template_path()
    make_db(tmp_path / "used.db", flow_runs=2)
    assert not capture_template(tmp_path / "used.db", template)
    assert not template.exists() and not list(template.parent.glob("*.partial"))
    make_db(tmp_path / "empty.db")
    assert capture_template(tmp_path / "empty.db", template)
    with sqlite3.connect(template) as db:
        assert db.execute("SELECT version_num FROM alembic_version").fetchone() == ("head",)
        assert db.execute("PRAGMA journal_mode").fetchone() == ("delete",)  # one self-contained file
    db.close()


def test_capture_removes_partial_copies_a_killed_process_left(tmp_path, cache):
    import os
    import time

    template = prefect_template_path()
    template.parent.mkdir(parents=True)
    old, recent = (template.with_name(f"{template.name}.{n}.1.partial") for n in (1, 2))
    for partial in (old, recent):
        partial.write_bytes(b"half a copy")
    os.utime(old, (time.time() - 3600, time.time() - 3600))
    make_db(tmp_path / "empty.db")
    assert capture_template(tmp_path / "empty.db", template)
    assert not old.exists() and recent.exists(), "a recent one may be another process's capture"


def test_seed_copies_the_template_into_a_new_home_only(tmp_path, cache):
    home, project = tmp_path / "home", tmp_path / "project"
    home.mkdir()
    project.mkdir()
    template = prefect_template_path()
    # No template yet: nothing copied, and the caller is told to capture the new database.
    assert seed_prefect_database(home, project, {}) == template
    assert not (home / PREFECT_DB).exists()
    template.parent.mkdir(parents=True)
    make_db(template)
    assert seed_prefect_database(home, project, {}) is None
    assert (home / PREFECT_DB).read_bytes() == template.read_bytes()
    # An existing database is the project's own: never replaced.
    (home / PREFECT_DB).write_bytes(b"the project's runs")
    assert seed_prefect_database(home, project, {}) is None
    assert (home / PREFECT_DB).read_bytes() == b"the project's runs"


@pytest.mark.parametrize(
    "setting",
    [
        ("env", "PREFECT_API_DATABASE_CONNECTION_URL"),
        ("env", "PREFECT_SERVER_DATABASE_CONNECTION_URL"),
        ("file", "prefect.toml"),
    ],
)
def test_no_seed_where_the_server_uses_another_database(tmp_path, cache, setting):
    home, project = tmp_path / "home", tmp_path / "project"
    home.mkdir()
    project.mkdir()
    template = prefect_template_path()
    template.parent.mkdir(parents=True)
    make_db(template)
    kind, name = setting
    env = {name: "postgresql+asyncpg://db/prefect"} if kind == "env" else {}
    if kind == "file":
        (project / name).write_text('[server.database]\nconnection_url = "postgresql+asyncpg://db/p"\n')
    assert seed_prefect_database(home, project, env) is None
    assert not (home / PREFECT_DB).exists()
