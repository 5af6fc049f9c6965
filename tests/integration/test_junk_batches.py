"""A landed file that could exhaust the machine (issue 16.2: 200 MB of "zz" under the real header drove
`mlpipe run` to 23.5 GB) is quarantined with a report naming the limit it broke, and the next run is not
blocked by it. Small limits in params.yaml stand in for big files."""

from __future__ import annotations

from pathlib import Path

import pyarrow.parquet as pq
import pytest
from conftest import commit_all, edit_params, mlpipe

pytestmark = pytest.mark.integration


def _junk(path: Path, columns: list[str], rows: int) -> Path:
    path.write_text(",".join(columns) + "\n" + (",".join(["zz"] * len(columns)) + "\n") * rows)
    return path


def test_junk_over_the_limits_is_quarantined_with_its_rule_and_the_next_run_is_not_blocked(project_copy):
    root = project_copy
    edit_params(root, retrain={"max_batch_mb": 1, "max_batch_rows": 10_000, "chunk_rows": 1000})
    commit_all(root, "small landing limits")
    columns = pq.read_schema(sorted((root / "data").glob("*.parquet"))[0]).names
    lz = root / "landing"
    lz.mkdir(exist_ok=True)
    row_bytes = 3 * len(columns)
    _junk(lz / "junk-big.csv", columns, 1_500_000 // row_bytes)  # 1.5 MB: over max_batch_mb
    _junk(lz / "junk-long.csv", columns, 10_500)  # under 1 MB, over max_batch_rows
    _junk(lz / "junk-small.csv", columns, 2_500)  # within the limits: refused column by column
    (lz / "junk-ragged.csv").write_text(",".join(columns) + "\n" + "zz," * (len(columns) + 3) + "\n")

    proc = mlpipe(root, "run", check=False)
    assert proc.returncode == 3, proc.stderr[-2000:]
    names = "junk-big.csv, junk-long.csv, junk-ragged.csv, junk-small.csv"
    assert f"accepted none; quarantined {names}" in proc.stdout
    expected = {
        "junk-big.csv": "<file> | 1.5 MB, above max_batch_mb 1 (rule: retrain limits on a landed file",
        "junk-long.csv": "<file> | more rows than max_batch_rows 10000 (rule: retrain limits",
        "junk-small.csv": "time_hour | type string cannot be read as timestamp[ns, tz=UTC] (time_format",
        "junk-ragged.csv": "<file> | unreadable: junk-ragged.csv: CSV parse error",
    }
    qdir = root / "quarantine"
    for name, rule in expected.items():
        report = (qdir / f"{name}.report.md").read_text()
        assert "FAILED" in report and rule in report, report
        assert (qdir / name).exists(), f"{name} kept in quarantine, never deleted"
    small = (qdir / "junk-small.csv.report.md").read_text()
    assert "| junk-small.csv | distance | type string cannot be read as int64" in small
    assert "| 2500 | zz |" in small, "each refused column: how many values and which"
    assert "not convertible" not in small, "a refused column is not value-checked again, cell by cell"
    assert sorted(p.name for p in lz.iterdir()) == [], "nothing left to block the next run"

    again = mlpipe(root, "run")
    assert "QUARANTINED" not in again.stdout and not any(lz.iterdir())
