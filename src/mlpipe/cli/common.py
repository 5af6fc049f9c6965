"""What every `mlpipe` command shares: the project it works on, its options, JSON output, Prefect state."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Annotated

import typer

from mlpipe.config import PARAMS_FILE, Params, ProjectPaths, load_params

ROOT_OPTION = Annotated[Path, typer.Option("--root", help="Project root (holds params.yaml and dvc.yaml).")]
JSON_OPTION = Annotated[bool, typer.Option("--json", help="Print JSON instead of text.")]


def project(root: Path) -> ProjectPaths:
    """The project at `root`; a directory without params.yaml is a usage error."""
    root = root.resolve()
    if not (root / PARAMS_FILE).exists():
        raise typer.BadParameter(
            f"{root}: no {PARAMS_FILE} (rule: run inside an mlpipe project or pass --root)"
        )
    return ProjectPaths(root)


def project_params(paths: ProjectPaths) -> Params:
    return load_params(paths.root / PARAMS_FILE)


def echo_json(payload: dict) -> None:
    typer.echo(json.dumps(payload, indent=2, sort_keys=True, default=str))


def use_project_prefect(paths: ProjectPaths) -> None:
    """Prefect state stays inside the project unless PREFECT_HOME/PREFECT_API_URL say otherwise
    (read by Prefect at import, so call this before importing it)."""
    os.environ.setdefault("PREFECT_HOME", str(paths.prefect_home))
    # The temporary server's first start on a cold machine (new database, imports off a cold disk)
    # took more than Prefect's default 20 s here; 20 s made the README's first command fail.
    os.environ.setdefault("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "120")
    # mlpipe's own event lines also reach the Prefect run logs (and UI).
    os.environ.setdefault("PREFECT_LOGGING_EXTRA_LOGGERS", "mlpipe")
