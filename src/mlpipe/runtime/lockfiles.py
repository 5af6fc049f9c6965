"""Readers of the files that pin a model's inputs: data.dvc (the data hash), dvc.lock (every stage
output's hash) and uv.lock (exact package versions)."""

from __future__ import annotations

import tomllib
from pathlib import Path

import yaml

from mlpipe.errors import NotPinned


def dvc_file_md5(dvc_file: Path) -> str | None:
    """The md5 DVC recorded for the (single) output of a .dvc file, e.g. "3f...e1.dir"."""
    if not dvc_file.exists():
        return None
    doc = yaml.safe_load(dvc_file.read_text())
    return doc["outs"][0]["md5"]


def stage_output_hashes(lock_file: Path) -> dict[str, dict[str, str]]:
    """{stage: {output path: md5}} from dvc.lock."""
    if not lock_file.exists():
        return {}
    doc = yaml.safe_load(lock_file.read_text()) or {}
    return {
        stage: {out["path"]: out.get("md5", "") for out in body.get("outs", [])}
        for stage, body in doc.get("stages", {}).items()
    }


def locked_versions(lock_file: Path, names: list[str]) -> dict[str, str]:
    """Exact versions of `names` pinned in uv.lock (the lock, not whatever happens to be installed)."""
    doc = tomllib.loads(lock_file.read_text())
    pinned = {pkg["name"]: pkg["version"] for pkg in doc.get("package", []) if "version" in pkg}
    missing = [n for n in names if n not in pinned]
    if missing:
        raise NotPinned(
            f"{lock_file}: {missing} not pinned (rule: every model requirement comes from the lock)"
        )
    return {n: pinned[n] for n in names}
