"""scripts/function_lines.py, the guardrail on function length in the thin top layers: run as `make lint`
runs it, on planted files in a temporary directory."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
SCRIPT = REPO / "scripts" / "function_lines.py"


def _run(cwd: Path, *dirs: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, str(SCRIPT), *dirs], cwd=cwd, capture_output=True, text=True, check=False
    )


def _function(name: str, body_lines: int, params: int = 0) -> str:
    """A function with `params` parameters, one per line, and a body of exactly `body_lines` lines."""
    signature = "".join(f"    p{k}: int = {k},\n" for k in range(params))
    body = "".join(f"    x{k} = {k}\n" for k in range(body_lines - 1)) + "    return None\n"
    return f"def {name}(\n{signature}) -> None:\n{body}\n"


def test_a_long_body_fails_with_its_place_name_and_length(tmp_path):
    pkg = tmp_path / "cli"
    pkg.mkdir()
    (pkg / "cmd.py").write_text("import os\n\n\n" + _function("short", 60) + _function("long", 70))
    proc = _run(tmp_path, "cli")
    assert proc.returncode == 1, proc.stdout
    offenders = [line for line in proc.stdout.splitlines() if " lines" in line and ":" in line.split()[0]]
    assert offenders == ["cli/cmd.py:67 long 70 lines"], proc.stdout  # 60 lines is allowed, 61 is not


def test_a_long_signature_does_not_count_nor_does_a_method_hide(tmp_path):
    pkg = tmp_path / "cli"
    pkg.mkdir()
    (pkg / "cmd.py").write_text(_function("many_options", 20, params=80))
    assert _run(tmp_path, "cli").returncode == 0

    method = "class Service:\n" + "".join(f"    {line}\n" for line in _function("handle", 61).splitlines())
    (pkg / "service.py").write_text(method)
    proc = _run(tmp_path, "cli")
    assert proc.returncode == 1 and "cli/service.py:2 Service.handle 61 lines" in proc.stdout, proc.stdout


def test_the_projects_own_top_layers_pass():
    proc = _run(REPO)
    assert proc.returncode == 0, proc.stdout
