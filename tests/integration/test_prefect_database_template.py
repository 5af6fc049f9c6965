"""A project's first Prefect server migrates a new database once per Prefect version (issue 33): the next
project's server starts on a copy of it, already at Alembic's head, with the block types Prefect
registers; the copy holds nothing of the first project's, and both servers end when stopped."""

from __future__ import annotations

import sqlite3
import time

from mlpipe.runtime.localserver import (
    PREFECT_DB,
    holds_only_template_rows,
    launch_temporary_prefect,
    prefect_template_path,
    wait_answering,
)
from mlpipe.runtime.shell import stop_process_group


def _rows(db_path, sql: str) -> list[tuple]:
    with sqlite3.connect(db_path) as db:
        rows = db.execute(sql).fetchall()
    db.close()
    return rows


def _serve(home, cwd, then=lambda url: None):
    """A temporary server on `home` until it answers and `then(url)` returns; its process, stopped."""
    url, proc = launch_temporary_prefect(home, cwd)
    try:
        wait_answering(proc, f"{url}/health", 300)
        then(url)
    finally:
        stop_process_group(proc, 10)
    return proc


def test_the_second_project_starts_on_a_copy_of_the_first_migrated_database(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.delenv("MLPIPE_PREFECT_TEMPLATE", raising=False)
    template = prefect_template_path()
    first, second = tmp_path / "first" / ".prefect", tmp_path / "second" / ".prefect"

    def template_taken(url: str) -> None:
        deadline = time.monotonic() + 60  # taken beside the caller, once the server answers
        while not template.exists() and time.monotonic() < deadline:
            time.sleep(0.2)

    proc = _serve(first, tmp_path, template_taken)
    assert proc.poll() is not None, "the first server is stopped"
    assert template.exists(), "the first new database became the template"
    with sqlite3.connect(template) as db:
        assert holds_only_template_rows(db)
    db.close()
    (head,) = _rows(first / PREFECT_DB, "SELECT version_num FROM alembic_version")
    assert _rows(template, "SELECT version_num FROM alembic_version") == [head]
    assert _rows(template, "SELECT count(*) FROM block_type")[0][0] > 0

    taken = template.stat().st_mtime_ns
    proc = _serve(second, tmp_path)
    assert proc.poll() is not None, "the second server is stopped"
    assert template.stat().st_mtime_ns == taken, "a seeded project's database is not captured again"
    assert _rows(second / PREFECT_DB, "SELECT version_num FROM alembic_version") == [head]
    assert not list(template.parent.glob("*.partial")) and not list(second.glob("*.partial"))
