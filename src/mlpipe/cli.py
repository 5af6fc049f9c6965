"""The `mlpipe` command."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Annotated

import typer

from mlpipe.config import PARAMS_FILE, ProjectPaths, load_params
from mlpipe.logs import configure_logging, event, timed
from mlpipe.shell import OFFLINE_ENV, ToolError, run_tool, tool_env

app = typer.Typer(add_completion=False, no_args_is_help=True, help="Reproducible ML pipeline: DVC stages, MLflow record.")

ROOT_OPTION = Annotated[Path, typer.Option("--root", help="Project root (holds params.yaml and dvc.yaml).")]


def project(root: Path) -> ProjectPaths:
    root = root.resolve()
    if not (root / PARAMS_FILE).exists():
        raise typer.BadParameter(f"{root}: no {PARAMS_FILE} (rule: run inside an mlpipe project or pass --root)")
    return ProjectPaths(root)


def tracking_uri(paths: ProjectPaths) -> str:
    """MLFLOW_TRACKING_URI when set (team mode), else SQLite under the project's mlruns/."""
    uri = os.environ.get("MLFLOW_TRACKING_URI")
    if uri:
        return uri
    paths.mlruns.mkdir(parents=True, exist_ok=True)
    return paths.tracking_uri


@app.command()
def bootstrap(root: ROOT_OPTION = Path(".")) -> None:
    """Materialise the initial period under data/ (deterministically), `dvc add` it and push to the remote."""
    from mlpipe.snapshot import bootstrap as bootstrap_data

    paths = project(root)
    md5 = bootstrap_data(paths, load_params(paths.root / PARAMS_FILE))
    typer.echo(f"data/ is at {md5} (data.dvc); pushed to the default DVC remote")


def repro(paths: ProjectPaths) -> list[str]:
    """`dvc repro`; return the stages that actually ran (an unchanged workspace runs none)."""
    with timed("dvc_repro"):
        proc = run_tool(["dvc", "repro"], paths.root, check=False)
    sys.stderr.write(proc.stderr)
    if proc.returncode != 0:
        tail = "\n".join((proc.stderr or proc.stdout).strip().splitlines()[-15:])
        raise ToolError(f"`dvc repro` failed (exit {proc.returncode}); nothing was recorded or registered:\n{tail}")
    ran = re.findall(r"Running stage '([^']+)'", proc.stdout)
    event("dvc_repro_done", stages_run=",".join(ran) or "none")
    return ran


@app.command()
def run(root: ROOT_OPTION = Path(".")) -> None:
    """The main job: bootstrap when there is no data, snapshot changed data, `dvc repro`, record in MLflow."""
    from mlpipe.snapshot import bootstrap as bootstrap_data
    from mlpipe.snapshot import data_changed, has_data, push_data, snapshot_data
    from mlpipe.tracking import record_run

    paths = project(root)
    params = load_params(paths.root / PARAMS_FILE)
    if not has_data(paths):
        bootstrap_data(paths, params)
    elif data_changed(paths):
        snapshot_data(paths)
    else:
        push_data(paths)
    ran = repro(paths)
    uri = tracking_uri(paths)
    with timed("mlflow_record"):
        rec = record_run(paths, params, uri)
    metrics = ", ".join(f"{k}={v}" for k, v in rec.metrics.items() if k in ("roc_auc", "average_precision", "f1", "accuracy", "n_test"))
    typer.echo("\n".join([
        "mlpipe run: done" + (" (nothing changed: this commit, data and model were already recorded)" if rec.already_recorded else ""),
        f"  stages run:    {', '.join(ran) or 'none (outputs up to date)'}",
        f"  mlflow run:    {rec.run_id} (experiment {params.model.experiment})",
        f"  model:         {rec.model_name} version {rec.model_version} (sha256 {rec.model_sha256[:16]}...)",
        f"  metrics:       {metrics}",
        f"  data md5:      {rec.data_md5}",
        f"  git commit:    {rec.git_commit}{' (dirty tree)' if rec.git_dirty else ''}",
        f"  tracking:      {uri}",
        "  open the UI:   mlpipe ui   (MLflow on http://127.0.0.1:5000)",
    ]))


@app.command()
def ui(root: ROOT_OPTION = Path("."), port: int = 5000, host: str = "127.0.0.1") -> None:
    """Start the MLflow UI over this project's tracking store (127.0.0.1 by default)."""
    paths = project(root)
    uri = tracking_uri(paths)
    cmd = [str(Path(sys.executable).parent / "mlflow"), "ui", "--backend-store-uri", uri, "--host", host, "--port", str(port)]
    if not os.environ.get("MLFLOW_TRACKING_URI"):
        cmd += ["--default-artifact-root", paths.artifact_root.as_uri()]
    typer.echo(f"MLflow UI on http://{host}:{port} (Ctrl-C stops it)")
    raise typer.Exit(subprocess.call(cmd, cwd=paths.root, env=tool_env()))


def main(argv: list[str] | None = None) -> int:
    """Entry point of the `mlpipe` script; returns the exit code."""
    for key, value in OFFLINE_ENV.items():
        os.environ.setdefault(key, value)
    configure_logging()
    try:
        result = app(args=argv, prog_name="mlpipe", standalone_mode=False)
    except (ToolError, ValueError, FileNotFoundError, KeyError) as exc:
        typer.echo(f"mlpipe: {exc}", err=True)
        return 1
    except Exception as exc:  # click's usage errors carry their own exit codes
        import click

        if isinstance(exc, click.ClickException):
            exc.show()
            return exc.exit_code
        if isinstance(exc, click.exceptions.Abort):
            return 130
        raise
    return result if isinstance(result, int) else 0


if __name__ == "__main__":
    raise SystemExit(main())
