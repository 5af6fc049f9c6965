"""Looking at and moving models: `mlpipe reproduce`, `lineage`, `diff`, `promote`, `rollback`."""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer

from mlpipe.cli.common import JSON_OPTION, ROOT_OPTION, echo_json, project, project_params
from mlpipe.errors import EXIT_NOT_IDENTICAL, MissingInput, Refused
from mlpipe.registry.aliases import REGISTRY_WAIT_S
from mlpipe.registry.client import mlflow_client, tracking_uri


class EnvMode(StrEnum):
    """Where `mlpipe reproduce` reruns the stages."""

    auto = "auto"
    current = "current"


def reproduce(
    ref: str,
    root: ROOT_OPTION = Path("."),
    as_json: JSON_OPTION = False,
    keep: Annotated[
        bool, typer.Option("--keep", help="Keep the isolated checkout (prints its path).")
    ] = False,
    env: Annotated[
        EnvMode,
        typer.Option(
            "--env",
            help="auto: the commit's own locked environment (the running one when it matches the commit's "
            "uv.lock, else built from that lock into .mlpipe/envs/); current: the running one regardless.",
        ),
    ] = EnvMode.auto,
) -> None:
    """Rebuild REF (run id, models:/NAME/VERSION or models:/NAME@ALIAS) from its git commit and DVC data
    hash in an isolated worktree, in the commit's own locked environment, and compare model bytes,
    predictions, metrics and stage outputs; says which environment it used.
    Exit 0 when identical, 4 when not, 2 when it cannot be reproduced (the message says why)."""
    from mlpipe.registry.reproduce import reproduce as run_reproduction
    from mlpipe.registry.reproduce.report import render_table

    paths = project(root)
    try:
        verdict = run_reproduction(paths.root, ref, tracking_uri(paths), keep=keep, env_mode=env.value)
    except Refused as exc:
        if as_json:
            echo_json({"ref": ref, "identical": False, "refused": str(exc)})
        raise
    if as_json:
        echo_json(verdict.as_dict())
    else:
        typer.echo(render_table(verdict))
        typer.echo(f"recorded as MLflow run {verdict.reproduction_run_id}")
        if verdict.checkout:
            typer.echo(
                f"isolated checkout kept at {verdict.checkout} (git worktree remove --force it when done)"
            )
    if not verdict.identical:
        raise typer.Exit(EXIT_NOT_IDENTICAL)


def lineage(ref: str, root: ROOT_OPTION = Path("."), as_json: JSON_OPTION = False) -> None:
    """The reproducibility checklist of a model: registry -> run -> commit -> data -> outputs -> verdicts."""
    from mlpipe.registry.lineage import model_lineage, render_lineage

    paths = project(root)
    d = model_lineage(mlflow_client(tracking_uri(paths)), ref)
    echo_json(d) if as_json else typer.echo(render_lineage(d))


def diff(
    ref_a: str,
    ref_b: str,
    root: ROOT_OPTION = Path("."),
    as_json: JSON_OPTION = False,
    data: Annotated[
        Path | None,
        typer.Option("--data", help="Parquet rows to compare on (default: the current test split)."),
    ] = None,
    top: Annotated[int, typer.Option("--top", help="How many most-changed rows to show.")] = 10,
) -> None:
    """Compare two models on the same rows: metric deltas, changed predictions, rows that moved most."""
    from mlpipe.data.frames import read_frame
    from mlpipe.release.diff import diff as diff_models
    from mlpipe.release.diff import render_diff

    paths = project(root)
    params = project_params(paths)
    source = data or paths.test_split
    if not source.exists():
        raise MissingInput(f"{source}: no data to compare on (run `mlpipe run` first or pass --data)")
    d = diff_models(
        mlflow_client(tracking_uri(paths)),
        ref_a,
        ref_b,
        read_frame(source),
        params.dataset.target,
        params.evaluate.threshold,
        top,
        params.train.trusted_types,
    )
    d["data"] = str(source)
    echo_json(d) if as_json else typer.echo(render_diff(d))


# Wait, bounded, rather than refuse at once: every hold of the registry lock is one alias move or one
# version's verification (seconds), so a command that waits almost always goes through, in order.
WAIT_OPTION = Annotated[
    float,
    typer.Option(
        "--wait",
        min=0,
        help="Seconds to wait for a registry move in progress (a run's gate, another promote or rollback) "
        "before refusing.",
    ),
]


def promote(
    ref: str,
    reason: Annotated[str, typer.Option("--reason", help="Why (recorded on the run and version).")],
    root: ROOT_OPTION = Path("."),
    as_json: JSON_OPTION = False,
    wait: WAIT_OPTION = REGISTRY_WAIT_S,
) -> None:
    """Make REF (models:/NAME/VERSION or a run id) the champion by hand; the infra check still runs."""
    from mlpipe.flows.preflight import forget_run
    from mlpipe.release.gate import manual_promote

    paths = project(root)
    d = manual_promote(paths, project_params(paths), tracking_uri(paths), ref, reason, wait)
    forget_run(paths)  # the aliases the last run's summary names have moved
    if as_json:
        echo_json(d)
    else:
        typer.echo(f"champion is now version {d['version']} (was {d['replaced'] or 'none'}); {d['decision']}")


def rollback(
    root: ROOT_OPTION = Path("."),
    reason: Annotated[str, typer.Option("--reason", help="Why (tagged on the demoted version).")] = "",
    wait: WAIT_OPTION = REGISTRY_WAIT_S,
) -> None:
    """champion <- previous (the version the last promotion replaced), once it loads and verifies as the
    service would load it (sha256, versions, allowlist); a version that fails is refused. Waits up to
    --wait seconds for a registry move in progress (a run's gate promoting), then refuses in one line."""
    from mlpipe.flows.preflight import forget_run
    from mlpipe.registry.models import rollback_champion

    paths = project(root)
    client = mlflow_client(tracking_uri(paths))
    params = project_params(paths)
    demoted, champion = rollback_champion(
        paths.root, client, params.model.name, reason, wait, params.train.trusted_types
    )
    forget_run(paths)  # the aliases the last run's summary names have moved
    typer.echo(f"champion is now version {champion} (rolled back from {demoted or 'none'})")
