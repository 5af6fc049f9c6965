"""The served model and the service's settings, as the request path's steps take them."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from mlpipe.runtime.signing import SigningKey
from mlpipe.serving.request_rules import RequestRules
from mlpipe.serving.settings import SERVE


@dataclass(frozen=True)
class Served:
    """One loaded, checked model and what /model tells about it."""

    model: object
    name: str
    version: str
    run_id: str
    info: dict
    rules: RequestRules  # from this model's own training profile: no train/serve skew
    profile: dict
    task: str = "binary"  # read off the model (model.outputs.task_of)
    classes: list = field(default_factory=list)  # the labels a classifier answers with
    # scores from the checked columns without a DataFrame (serving.fast_scores), when the pipeline's steps
    # replay bit for bit; None: through the pipeline
    scorer: Callable | None = None


@dataclass
class ServeConfig:
    """What the app reads of the settings (serving.settings) and of the project."""

    max_records: int = SERVE.max_records
    max_bytes: int = SERVE.max_bytes  # every request body, streamed or not (serving.guard)
    max_in_flight: int | None = None  # requests at once beyond which the non-probe ones get 503
    threshold: float = 0.5
    poll_s: float = SERVE.poll_s
    features: list[str] = field(default_factory=list)
    # True: answer once the rows are committed or spooled (kill -9 loses nothing answered); False: answer at
    # once, the rows queued (kill -9 can lose what queued during the last write, ~ one group commit)
    durable_log: bool = True
    # the key judged records verify under (runtime.signing); without one every version is refused
    signing_key: SigningKey = field(default_factory=lambda: SigningKey(None, "nowhere (no key given)"))
