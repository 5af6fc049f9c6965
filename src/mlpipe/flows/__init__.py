"""Prefect flows: orchestration only; the ML and data logic lives in `mlpipe`."""
