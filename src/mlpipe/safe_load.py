"""Loading a model safely, one piece of code for every consumer (gate, infra check, diff, reproduce,
the service): the file's sha256 must be the one recorded at training, the running scikit-learn,
numpy and pandas must match the model's manifest in major.minor (patch differences warn), and skops
loads it with the project's own allowlist of types, never the list inside the artifact.
Every refusal is one line naming the file, what was expected and what was found."""

from __future__ import annotations

import hashlib
import json
import logging
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from mlpipe.logs import event

STRICT_PACKAGES = ("scikit-learn", "numpy", "pandas")  # major.minor must match; other manifest packages warn


class ModelRefused(RuntimeError):
    """The model file failed a check before loading; the message is one line."""


@dataclass
class LoadedModel:
    model: object
    path: Path
    sha256: str
    manifest: dict
    warnings: list[str] = field(default_factory=list)


def file_sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _major_minor(version: str) -> tuple[str, ...]:
    return tuple(version.split(".")[:2])


def check_packages(path: Path, recorded: dict[str, str], running: dict[str, str], allow_mismatch: bool = False) -> list[str]:
    """Warnings for patch-level differences; ModelRefused for a major.minor difference of a strict
    package (unless `allow_mismatch`, which turns it into a warning). Pure."""
    warnings = []
    for name, want in sorted(recorded.items()):
        if name == "python":
            continue
        got = running.get(name)
        if got == want:
            continue
        line = f"{path}: {name} {got or 'missing'} running, model built with {want}"
        if name in STRICT_PACKAGES and (got is None or _major_minor(got) != _major_minor(want)) and not allow_mismatch:
            raise ModelRefused(f"{line} (rule: {name} major.minor must match; pass allow_version_mismatch to override)")
        warnings.append(line)
    return warnings


def running_versions(names) -> dict[str, str]:
    import importlib.metadata

    out = {}
    for name in names:
        try:
            out[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            pass
    return out


def load_verified(path: Path, expected_sha256: str, manifest: dict, allow_version_mismatch: bool = False) -> LoadedModel:
    """Check `path` against the recorded sha256 and the manifest's packages, then load it with the allowlist."""
    from mlpipe.train import load_model_file

    if not path.exists():
        raise ModelRefused(f"{path}: no such model file")
    found = file_sha256(path)
    if found != expected_sha256:
        raise ModelRefused(f"{path}: sha256 {found} found, {expected_sha256} recorded at training "
                           "(rule: only the file that was trained is loaded)")
    recorded = manifest.get("packages", {})
    warnings = check_packages(path, recorded, running_versions(recorded), allow_version_mismatch)
    for w in warnings:
        event("model_version_warning", logging.WARNING, detail=w)
    try:
        model = load_model_file(path)
    except ValueError as exc:
        raise ModelRefused(str(exc)) from exc
    return LoadedModel(model, path, found, manifest, warnings)


def load_model_dir(model_dir: Path, expected_sha256: str | None = None, allow_version_mismatch: bool = False) -> LoadedModel:
    """A model directory (model.skops + manifest.json); the sha256 is the caller's recorded value when
    given (an MLflow tag), else the manifest's."""
    manifest_path = model_dir / "manifest.json"
    if not manifest_path.exists():
        raise ModelRefused(f"{manifest_path}: no manifest beside the model (rule: a model travels with its manifest)")
    manifest = json.loads(manifest_path.read_text())
    expected = expected_sha256 or manifest["model_sha256"]
    if expected_sha256 and manifest.get("model_sha256") != expected_sha256:
        raise ModelRefused(f"{manifest_path}: manifest names sha256 {manifest.get('model_sha256')}, "
                           f"{expected_sha256} recorded at training (rule: the manifest is the one trained)")
    return load_verified(model_dir / manifest.get("model_file", "model.skops"), expected, manifest, allow_version_mismatch)


def load_registered(client, ref: str, allow_version_mismatch: bool = False, dest: Path | None = None) -> tuple[LoadedModel, str]:
    """(verified model, run id) for a run id or models:/ reference, checked against the run's recorded sha256."""
    from mlpipe.reproduce import resolve_run_id

    run_id = resolve_run_id(client, ref)
    recorded = client.get_run(run_id).data.tags.get("mlpipe.model_sha256")
    if not recorded:
        raise ModelRefused(f"{ref}: run {run_id} records no mlpipe.model_sha256 (rule: only mlpipe models are loaded)")
    target = dest or Path(tempfile.mkdtemp(prefix="mlpipe-model-"))
    model_dir = Path(client.download_artifacts(run_id, "mlpipe/model", str(target)))
    return load_model_dir(model_dir, recorded, allow_version_mismatch), run_id
