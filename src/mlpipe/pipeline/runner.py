"""Run one dvc.yaml stage through DVC's own reproduce logic (change detection, run-cache restore,
output removal, cache commit, dvc.lock), but execute mlpipe's stage bodies in this process instead
of a fresh `python -m mlpipe.pipeline.stages.<name>` each: the flow then imports pandas/scikit-learn once
rather than once per stage. Any other command in dvc.yaml still runs as DVC would run it."""

from __future__ import annotations

import importlib
import logging
import threading
from collections.abc import Callable
from contextlib import contextmanager
from pathlib import Path
from unittest import mock

from mlpipe.config import PARAMS_FILE, Params, ProjectPaths, load_params
from mlpipe.errors import StageFailed
from mlpipe.pipeline.layout import STAGE_PACKAGE, STAGES
from mlpipe.runtime.logs import event, timed

# stage name -> (module, body); dvc.yaml runs `python -m <module>`, whose main() calls the same body.
_DVC_LOCK = threading.Lock()  # the patched runner is process-wide: one stage at a time


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
def _in_process_commands(root: Path, executed: list[str]):
    import dvc.stage.run as dvc_run

    original = dvc_run.cmd_run

    def cmd_run(stage, dry=False, run_env=None):
        found = in_process_body(stage.cmd)
        if found is None or dry:
            return original(stage, dry=dry, run_env=run_env)
        name, body = found
        executed.append(name)
        with timed("stage", stage=name, in_process=True):
            try:
                body(load_params(root / PARAMS_FILE), ProjectPaths(root))
            except Exception as exc:
                raise StageFailed(f"stage {name} failed: {exc}") from exc

    dvc_logger = logging.getLogger("dvc")
    level = dvc_logger.level
    dvc_logger.setLevel(logging.WARNING)  # DVC's info lines go to stdout; the stage_outcome event says it
    # "Process ... had been killed. Auto removed it from the lock file", twice per output after an interrupted
    # run: the run's own interrupted_run_restored event says it once.
    rwlock_logger = logging.getLogger("dvc.rwlock")
    rwlock_level = rwlock_logger.level
    rwlock_logger.setLevel(logging.ERROR)
    try:
        with mock.patch.object(dvc_run, "cmd_run", cmd_run):
            yield
    finally:
        dvc_logger.setLevel(level)
        rwlock_logger.setLevel(rwlock_level)


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
