"""The manifest that travels with a model file: its sha256, seed, config and data hashes, and the exact
package versions it was built with."""

from __future__ import annotations

import contextlib
import importlib.metadata
import platform

from mlpipe.config import FeaturesCfg
from mlpipe.model.artifact import MODEL_FILE, TRUSTED_TYPES

# Packages whose exact versions a model file needs to load and predict the same way.
MODEL_PACKAGES = ("scikit-learn", "numpy", "scipy", "pandas", "skops")


def package_versions(names: tuple[str, ...] = MODEL_PACKAGES) -> dict[str, str]:
    """Exact installed versions of `names`, plus Python's major.minor.

    Python's patch level is left out: it does not change the model, and recording it would make the
    manifest (and so dvc.lock) differ between machines that build identical models.
    """
    out = {name: importlib.metadata.version(name) for name in names}
    out["python"] = ".".join(platform.python_version_tuple()[:2])
    return out


def build_manifest(
    *,
    model_sha256: str,
    seed: int,
    params_hash: str,
    data_md5: str | None,
    train_sha256: str,
    features: FeaturesCfg,
    target: str,
    estimator: str,
    task: str = "binary",
    classes: list | None = None,
    trusted_types: list[str] | None = None,
    user_trusted_types: list[str] | None = None,
    selection: dict | None = None,
) -> dict:
    """Everything needed to check a model file is the one trained from this config and data; `estimator`
    is what was trained, and `selection`, when train.estimator auto chose it, says on what scores."""
    return {
        "model_file": MODEL_FILE,
        "format": "skops",
        "model_sha256": model_sha256,
        "seed": seed,
        "params_sha256": params_hash,
        "data_md5": data_md5,
        "train_sha256": train_sha256,
        "estimator": estimator,
        "task": task,
        "classes": classes or [],
        # binary: the label the model answers the probability of (classes_of: the positive class last)
        **({"positive_class": classes[-1]} if task == "binary" and classes else {}),
        "features": {"categorical": features.categorical, "numerical": features.numerical},
        "target": target,
        "packages": package_versions(),
        "trusted_types": list(TRUSTED_TYPES) if trusted_types is None else trusted_types,
        "user_trusted_types": user_trusted_types or [],
        **({"selection": selection} if selection else {}),
    }


def installed_versions(names) -> dict[str, str]:
    """Installed versions of those of `names` that are installed (others are left out)."""
    out = {}
    for name in names:
        with contextlib.suppress(importlib.metadata.PackageNotFoundError):
            out[name] = importlib.metadata.version(name)
    return out
