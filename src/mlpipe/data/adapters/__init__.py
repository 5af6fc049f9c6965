"""Dataset adapters: the only dataset-specific code. Each exposes `load_period(start, end)`."""

from __future__ import annotations

import importlib
from types import ModuleType

from mlpipe.errors import ConfigError


def get_adapter(name: str) -> ModuleType:
    """Return the adapter module `mlpipe.data.adapters.<name>`; unknown names fail with the known ones."""
    try:
        return importlib.import_module(f"{__name__}.{name}")
    except ModuleNotFoundError as exc:
        raise ConfigError(
            f"dataset.adapter: unknown adapter {name!r} (rule: module {__name__}.{name} must exist)"
        ) from exc
