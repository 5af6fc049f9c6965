"""Every refusal mlpipe knows, under one base. The CLI prints each as one line `mlpipe: <message>` and
exits with its `exit_code`; any other exception is a bug and keeps its traceback.

Each class also derives from the builtin it stands for (ValueError, FileNotFoundError, ...), so code
that catches the builtin keeps working; the message is never repr-quoted (a KeyError's would be)."""

from __future__ import annotations

# Exit codes of the `mlpipe` command (0 is success).
EXIT_ERROR = 1  # a refusal or failure the message explains
EXIT_REFUSED = 2  # reproduce/lineage/diff/promote: the ref cannot be used or reproduced
EXIT_QUARANTINED = 3  # run: some batch broke a rule and was quarantined (the good ones went in)
EXIT_NOT_IDENTICAL = 4  # reproduce: the rebuilt model differs from the recorded one
EXIT_RETIRE = 5  # monitor: live performance below monitor.floor
EXIT_DIRTY = 6  # run: uncommitted changes; a model from them could not be reproduced (see --experiment)


class MlpipeError(Exception):
    """A known refusal: the message names the thing and the rule; `exit_code` is the CLI's exit status."""

    exit_code = EXIT_ERROR

    def __str__(self) -> str:
        return str(self.args[0]) if len(self.args) == 1 else super().__str__()


class ConfigError(MlpipeError, ValueError):
    """params.yaml (or a value in it) breaks a rule."""


class DataError(MlpipeError, ValueError):
    """Data breaks a rule a stage needs (no rows to split, rows without a time, inputs a model lacks)."""


class MissingColumns(DataError, KeyError):
    """Columns the configuration requires are absent from the data."""


class DataValidationError(DataError):
    """Data breaks the schema; the message lists every violation."""

    def __init__(self, violations: list):
        self.violations = violations
        super().__init__("data validation failed:\n" + "\n".join(f"  - {v.message()}" for v in violations))


class NotPinned(MlpipeError, KeyError):
    """A package a model needs is not pinned in uv.lock."""


class MissingInput(MlpipeError, FileNotFoundError):
    """A file or directory a command needs is not there (the message says how to make it)."""


class AlreadyExists(MlpipeError, FileExistsError):
    """A name that must be new is taken."""


class ToolError(MlpipeError, RuntimeError):
    """An external command (git, dvc, a server) failed; the message carries the command and its output."""


class LockBusy(MlpipeError, RuntimeError):
    """Another run held the project lock for longer than we were willing to wait."""


class StageFailed(MlpipeError, RuntimeError):
    """A pipeline stage raised; the message is the stage's one-line verdict."""


class FlowFailed(MlpipeError, RuntimeError):
    """A Prefect flow ended Failed or Crashed; the message is its state's."""


class ModelRefused(MlpipeError, RuntimeError):
    """A model file failed a check before loading; the message is one line."""


class UntrustedTypes(ModelRefused, ValueError):
    """A model file holds types outside the project's allowlist."""


class NotJudged(ModelRefused):
    """A registered version carries no valid judged record (a gate pass or `mlpipe promote`, signed with the
    project's key): it is never served."""


class DeployBudgetExceeded(MlpipeError, RuntimeError):
    """A fresh model is over the target's size or memory budget; nothing was recorded or registered."""


class ProbeFailed(MlpipeError, RuntimeError):
    """The infra probe's process failed; the message is the last line it printed."""


class Refused(MlpipeError, RuntimeError):
    """A model ref cannot be used or reproduced; the message says why and what to do."""

    exit_code = EXIT_REFUSED


class PromotionRefused(MlpipeError, ValueError):
    """A manual promotion or rollback breaks a rule (no reason, no previous champion, infra check failed)."""


class SweepRefused(MlpipeError, ValueError):
    """The sweep cannot run or apply its winner (no grid, waiting batches, a grid the estimator refuses)."""


class SnapshotMismatch(SweepRefused):
    """The split files on disk are not the ones DVC recorded for the current data."""


class DirtyTree(MlpipeError, RuntimeError):
    """The project has uncommitted changes: a model trained from them could not be recreated from a
    commit, so it is not trained for registration (`mlpipe run --experiment` records it unregistered)."""

    exit_code = EXIT_DIRTY
