"""The docs site built as `make docs-build` builds it (`mkdocs build --strict`), into a folder of a test's
choosing: the one call the docs site's unit test and the browser check both make. Not a test module: tests/
is on the import path by its conftest, so `from docs_build import build_docs_site` finds it from unit and
integration tests alike."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def build_docs_site(site: Path, env: dict[str, str]) -> None:
    """Build the docs site into `site` with `env` (mkdocs 2's notice off); a failed build fails the test with
    the end of mkdocs' output."""
    mkdocs = Path(sys.executable).parent / "mkdocs"
    assert mkdocs.exists(), (
        "mkdocs is not installed: `make setup` installs the docs group (uv sync --group docs)"
    )
    proc = subprocess.run(
        [str(mkdocs), "build", "--strict", "--site-dir", str(site)],
        cwd=REPO,
        env={**env, "NO_MKDOCS_2_WARNING": "1"},
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
