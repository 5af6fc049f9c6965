"""Dataset adapters: the only dataset-specific code. Each exposes `load_period(start, end)`."""

from __future__ import annotations

import importlib
from types import ModuleType


def get_adapter(name: str) -> ModuleType:
    """Return the adapter module `mlpipe.adapters.<name>`; unknown names fail with the known ones."""
    try:
        return importlib.import_module(f"mlpipe.adapters.{name}")
    except ModuleNotFoundError as exc:
        raise ValueError(f"dataset.adapter: unknown adapter {name!r} (rule: module mlpipe.adapters.{name} must exist)") from exc
