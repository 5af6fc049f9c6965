"""Run one dvc.yaml stage through DVC's own reproduce logic (change detection, run-cache restore,
output removal, cache commit, dvc.lock), but execute mlpipe's stage bodies in this process instead
of a fresh `python -m mlpipe.pipeline.stages.<name>` each: the flow then imports pandas/scikit-learn once
rather than once per stage. Any other command in dvc.yaml still runs as DVC would run it.

The seam is DVC's `dvc.stage.run.cmd_run(stage, dry, run_env)`, the one function that turns a stage into a
process. DVC has no public hook for it, so the shortcut is taken only where its contract is known to hold:
a DVC major version it was written for and that exact signature (`in_process_supported`), pinned by the
contract tests in tests/unit/pipeline/test_runner.py, which run a real stage through the seam. Anywhere
else, or with MLPIPE_STAGES_IN_PROCESS=0, DVC runs `python -m ...` itself: the same stage bodies, the same
outputs and dvc.lock, ~2-3 s more per stage for a fresh interpreter's imports (measured in the note of
issue 31)."""

from __future__ import annotations

import importlib
import inspect
import logging
import os
import threading
from collections.abc import Callable
from contextlib import contextmanager
from pathlib import Path

from mlpipe.config import PARAMS_FILE, Params, ProjectPaths, load_params
from mlpipe.errors import StageFailed
from mlpipe.pipeline.layout import STAGE_PACKAGE, STAGES
from mlpipe.runtime.logs import event, timed

# stage name -> (module, body); dvc.yaml runs `python -m <module>`, whose main() calls the same body.
_DVC_LOCK = threading.Lock()  # the seam is process-wide: one stage at a time
DVC_MAJOR = 3  # the DVC the seam was written for (the lock pins 3.x)
SEAM_PARAMETERS = ("stage", "dry", "run_env")
IN_PROCESS_ENV = "MLPIPE_STAGES_IN_PROCESS"  # "0": every stage runs as DVC runs it, in its own process


def in_process_supported() -> bool:
    """True when the installed DVC has the seam this module replaces, as the contract tests pin it; an
    unknown DVC, or MLPIPE_STAGES_IN_PROCESS=0, leaves every command to DVC (slower, same results)."""
    import dvc
    import dvc.stage.run as dvc_run

    if os.environ.get(IN_PROCESS_ENV, "1") == "0":
        return False
    major = dvc.__version__.split(".", 1)[0]
    seam = getattr(dvc_run, "cmd_run", None)
    if major != str(DVC_MAJOR) or not callable(seam):
        return False
    return tuple(inspect.signature(seam).parameters) == SEAM_PARAMETERS


def in_process_body(cmd: str | list[str]) -> tuple[str, Callable[[Params, ProjectPaths], None]] | None:
    """(name, body) when `cmd` is exactly `python -m mlpipe.pipeline.stages.<name>`, else None."""
    if not isinstance(cmd, str):
        return None
    for name in STAGES:
        module = f"{STAGE_PACKAGE}.{name}"
        if cmd.split() == ["python", "-m", module]:
            return name, importlib.import_module(module).BODY
    return None


@contextmanager
def _quiet_dvc():
    """DVC's info lines go to stdout (the stage_outcome event says it); "Process ... had been killed. Auto
    removed it from the lock file", twice per output after an interrupted run: the run's own
    interrupted_run_restored event says it once."""
    loggers = [(logging.getLogger("dvc"), logging.WARNING), (logging.getLogger("dvc.rwlock"), logging.ERROR)]
    levels = [logger.level for logger, _ in loggers]
    for logger, level in loggers:
        logger.setLevel(level)
    try:
        yield
    finally:
        for (logger, _), level in zip(loggers, levels, strict=True):
            logger.setLevel(level)


@contextmanager
def _stages_report_to(executed: list[str]):
    """Stages DVC runs in their own processes append their names to a file (RAN_FILE_ENV, inherited through
    DVC's run environment); read into `executed` at the end."""
    import tempfile

    from mlpipe.pipeline.stages import RAN_FILE_ENV

    with tempfile.TemporaryDirectory(prefix="mlpipe-stages-") as tmp:
        ran = Path(tmp) / "ran"
        before = os.environ.get(RAN_FILE_ENV)
        os.environ[RAN_FILE_ENV] = str(ran)
        try:
            yield
        finally:
            if before is None:
                os.environ.pop(RAN_FILE_ENV, None)
            else:
                os.environ[RAN_FILE_ENV] = before
            executed.extend(ran.read_text().split() if ran.exists() else [])


@contextmanager
def _in_process_commands(root: Path, executed: list[str]):
    """Within the block, DVC's seam runs mlpipe's stage commands as their bodies in this process (appending
    the name of each stage that ran to `executed`); where the seam is not supported, DVC runs every command
    itself and mlpipe's stages report that they ran through a file (another command's run then reads as
    restored in the stage_outcome event)."""
    import dvc.stage.run as dvc_run

    if not in_process_supported():
        with _quiet_dvc(), _stages_report_to(executed):
            yield
        return
    original = dvc_run.cmd_run

    def cmd_run(stage, dry=False, run_env=None):
        found = in_process_body(stage.cmd)
        if found is None or dry:
            if not dry:
                executed.append(stage.addressing)  # any other command: DVC runs it, and it ran
            return original(stage, dry=dry, run_env=run_env)
        name, body = found
        executed.append(name)
        with timed("stage", stage=name, in_process=True):
            try:
                body(load_params(root / PARAMS_FILE), ProjectPaths(root))
            except Exception as exc:
                raise StageFailed(f"stage {name} failed: {exc}") from exc

    dvc_run.cmd_run = cmd_run  # run_stage looks it up at call time (a module global): the seam
    try:
        with _quiet_dvc():
            yield
    finally:
        dvc_run.cmd_run = original


DVC_LOCK_WAIT_S = 600.0  # a `dvc repro` started by hand between two flow stages: wait this long for it


def reproduce_stage(root: Path, name: str, lock_wait_s: float = DVC_LOCK_WAIT_S) -> str:
    """`dvc repro --single-item <name>` in process. Returns "ran", "restored" (DVC's run-cache gave the
    outputs back without running) or "skipped" (deps, params and outs unchanged). While another DVC
    process holds the repository's lock, waits for it (bounded by `lock_wait_s`) instead of failing."""
    import time

    from dvc.lock import LockError

    started = time.monotonic()
    deadline = started + lock_wait_s
    waited = False
    while True:
        try:
            with heartbeat(name):
                outcome = _reproduce_once(root, name)
        except LockError as exc:
            if time.monotonic() >= deadline:
                raise StageFailed(
                    f"stage {name}: another DVC process held {Path(root) / '.dvc' / 'tmp' / 'lock'} for "
                    f"more than {lock_wait_s:.0f} s ({exc}); nothing was changed"
                ) from None
            if not waited:
                event("dvc_lock_wait", logging.WARNING, stage=name, timeout_s=lock_wait_s)
                waited = True
            time.sleep(1.0)
            continue
        event(
            "stage_outcome",
            step=stage_step(name),
            stage=name,
            outcome=outcome,
            duration_s=round(time.monotonic() - started, 1),
        )
        return outcome


HEARTBEAT_S = 15.0  # a long stage says it is still at work this often (a person sees it has not hung)


@contextmanager
def heartbeat(name: str, every_s: float = HEARTBEAT_S):
    """While the block runs, one `stage_running` event every `every_s` seconds naming the stage, its place
    and the time so far; nothing for a stage that ends sooner."""
    import time

    started, done = time.monotonic(), threading.Event()

    def beat() -> None:
        while not done.wait(every_s):
            event(
                "stage_running",
                step=stage_step(name),
                stage=name,
                elapsed_s=round(time.monotonic() - started),
            )

    beater = threading.Thread(target=beat, name=f"mlpipe-heartbeat-{name}", daemon=True)
    beater.start()
    try:
        yield
    finally:
        done.set()
        beater.join()


def stage_step(name: str) -> str:
    """`3/4`: where stage `name` stands among the pipeline's stages, for a person following a run."""
    order = list(STAGES)
    return f"{order.index(name) + 1}/{len(order)}" if name in order else "?"


def _reproduce_once(root: Path, name: str) -> str:
    from dvc.lock import LockError
    from dvc.repo import Repo

    executed: list[str] = []
    with _DVC_LOCK, Repo(str(root)) as repo, _in_process_commands(Path(root), executed):
        repo.scm_context.quiet = True  # the flow commits dvc.lock itself; no "git add dvc.lock" hint
        try:
            reproduced = repo.reproduce(name, single_item=True)
        except LockError:
            raise
        except Exception as exc:
            cause = exc
            while cause.__cause__ is not None and not isinstance(cause, StageFailed | LockError):
                cause = cause.__cause__
            if isinstance(cause, LockError):
                raise cause from None
            raise StageFailed(str(cause)) from exc
    return "ran" if executed else ("restored" if reproduced else "skipped")
