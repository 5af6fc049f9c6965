"""Suite-wide settings: telemetry of every tool off, whatever shell the tests are started from."""

from __future__ import annotations

import os

from mlpipe.runtime.shell import OFFLINE_ENV


def pytest_configure(config) -> None:
    for key, value in OFFLINE_ENV.items():
        os.environ.setdefault(key, value)
