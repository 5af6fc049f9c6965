"""Loading a model file safely, one piece of code for every consumer (gate, infra check, diff,
reproduce, the service; registry.models fetches registered ones): the file's sha256 must be the one
recorded at training, the running scikit-learn,
numpy and pandas must match the model's manifest in major.minor (patch differences warn), and skops
loads it with mlpipe's and the project's own allowlist of types (`train.trusted_types`, passed in), never
the list inside the artifact or its manifest.
Every refusal is one line naming the file, what was expected and what was found."""

from __future__ import annotations

import hashlib
import json
import logging
import warnings as pywarnings
from dataclasses import dataclass, field
from pathlib import Path

from mlpipe.errors import ModelRefused
from mlpipe.model.artifact import MODEL_FILE, load_model_bytes
from mlpipe.model.manifest import installed_versions
from mlpipe.runtime.logs import event

MANIFEST_FILE = "manifest.json"  # beside the model file in every model directory
STRICT_PACKAGES = ("scikit-learn", "numpy", "pandas")  # major.minor must match; other manifest packages warn


@dataclass
class LoadedModel:
    model: object
    path: Path
    sha256: str
    manifest: dict
    warnings: list[str] = field(default_factory=list)


def _major_minor(version: str) -> tuple[str, ...]:
    return tuple(version.split(".")[:2])


def check_packages(
    path: Path, recorded: dict[str, str], running: dict[str, str], allow_mismatch: bool = False
) -> list[str]:
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
        if (
            name in STRICT_PACKAGES
            and (got is None or _major_minor(got) != _major_minor(want))
            and not allow_mismatch
        ):
            raise ModelRefused(
                f"{line} (rule: {name} major.minor must match; pass allow_version_mismatch to override)"
            )
        warnings.append(line)
    return warnings


def load_verified(
    path: Path,
    expected_sha256: str,
    manifest: dict,
    allow_version_mismatch: bool = False,
    project_trusted: list[str] | tuple[str, ...] = (),
) -> LoadedModel:
    """Check `path` against the recorded sha256 and the manifest's packages, then load those very bytes with
    mlpipe's allowlist plus `project_trusted` (the project's train.trusted_types)."""
    if not path.exists():
        raise ModelRefused(f"{path}: no such model file")
    data = path.read_bytes()  # read once: the bytes hashed are the bytes checked and loaded
    found = hashlib.sha256(data).hexdigest()
    if found != expected_sha256:
        raise ModelRefused(
            f"{path}: sha256 {found} found, {expected_sha256} recorded at training "
            "(rule: only the file that was trained is loaded)"
        )
    recorded = manifest.get("packages", {})
    warnings = check_packages(path, recorded, installed_versions(recorded), allow_version_mismatch)
    for w in warnings:
        event("model_version_warning", logging.WARNING, detail=w)
    # UntrustedTypes (a ModelRefused) names any type outside the allowlist; the manifest's own lists are
    # never read for it. scikit-learn's warning for a patch difference, once per estimator, says what the
    # event said.
    from sklearn.exceptions import InconsistentVersionWarning

    with pywarnings.catch_warnings():
        pywarnings.simplefilter("ignore", InconsistentVersionWarning)
        model = load_model_bytes(data, project_trusted, str(path))
    return LoadedModel(model, path, found, manifest, warnings)


def load_model_dir(
    model_dir: Path,
    expected_sha256: str | None = None,
    allow_version_mismatch: bool = False,
    project_trusted: list[str] | tuple[str, ...] = (),
) -> LoadedModel:
    """A model directory (model.skops + manifest.json); the sha256 is the caller's recorded value when
    given (an MLflow tag), else the manifest's."""
    manifest_path = model_dir / MANIFEST_FILE
    if not manifest_path.exists():
        raise ModelRefused(
            f"{manifest_path}: no manifest beside the model (rule: a model travels with its manifest)"
        )
    manifest = json.loads(manifest_path.read_text())
    expected = expected_sha256 or manifest["model_sha256"]
    if expected_sha256 and manifest.get("model_sha256") != expected_sha256:
        raise ModelRefused(
            f"{manifest_path}: manifest names sha256 {manifest.get('model_sha256')}, "
            f"{expected_sha256} recorded at training (rule: the manifest is the one trained)"
        )
    return load_verified(
        model_dir / manifest.get("model_file", MODEL_FILE),
        expected,
        manifest,
        allow_version_mismatch,
        project_trusted,
    )
