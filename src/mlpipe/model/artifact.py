"""The model file: canonical skops bytes (equal models, equal files) and loading it with the project's
own allowlist of types, never the list a file names for itself."""

from __future__ import annotations

import hashlib
import io
import json
import zipfile
from pathlib import Path

from mlpipe.errors import UntrustedTypes

MODEL_FILE = "model.skops"

# The project's own allowlist of types a model file may contain beyond skops' defaults. A model
# file is never trusted to name its own safe types (see STACK.md on loading models).
TRUSTED_TYPES = (
    "sklearn.ensemble._hist_gradient_boosting.binning._BinMapper",
    "sklearn.ensemble._hist_gradient_boosting.predictor.TreePredictor",
    "sklearn._loss.link.LogitLink",
    "sklearn._loss.link.Interval",
    "sklearn._loss.loss.HalfBinomialLoss",
    "sklearn._loss._loss.CyHalfBinomialLoss",
    "sklearn.tree._tree.Tree",
    "numpy.dtype",
    # ColumnTransformer's fitted passthrough is FunctionTransformer(partial(check_array)); skops checks
    # the wrapped function separately, so a partial of anything not listed here is still refused.
    "functools.partial",
    "sklearn.utils.validation.check_array",
)
# Types from these packages are trusted when a model file holds them (skops' own defaults cover the common
# estimators; the fitted internals of the rest are listed per model in its manifest). Anything else is
# loaded only if `train.trusted_types` listed it when the model was trained.
SAFE_PREFIXES = ("sklearn.", "numpy.", "scipy.")
# Fixed zip timestamp (the earliest a zip can hold) so the file's bytes do not depend on the clock.
_ZIP_EPOCH = (1980, 1, 1, 0, 0, 0)


def dump_model(model: object, path: Path) -> str:
    """Write the model with skops (no pickle) and return the file's sha256."""
    import skops.io as sio

    path.parent.mkdir(parents=True, exist_ok=True)
    payload = canonical_skops(sio.dumps(model))
    path.write_bytes(payload)
    return hashlib.sha256(payload).hexdigest()


def canonical_skops(payload: bytes) -> bytes:
    """Rewrite a skops archive so equal models give equal bytes.

    skops names objects and array files after `id()` (memory addresses) and stamps zip entries with
    the clock; both change between processes. Ids are renumbered in document order (references
    keep pointing at the same object) and timestamps fixed; `skops.io.load` reads the result as is.
    """
    zin = zipfile.ZipFile(io.BytesIO(payload))
    schema = json.loads(zin.read("schema.json"))
    ids: dict[int, int] = {}

    def new_id(old: int) -> int:
        return ids.setdefault(old, len(ids))

    def renumber(node):
        if isinstance(node, dict):
            for key, value in node.items():
                if key == "__id__":
                    node[key] = new_id(value)
                elif key == "file" and isinstance(value, str):
                    stem, dot, ext = value.partition(".")
                    node[key] = f"{new_id(int(stem))}{dot}{ext}"
                else:
                    renumber(value)
        elif isinstance(node, list):
            for item in node:
                renumber(item)

    renumber(schema)
    files = {info.filename: zin.read(info) for info in zin.infolist() if info.filename != "schema.json"}
    renamed = {}
    for name, data in files.items():
        stem, dot, ext = name.partition(".")
        renamed[f"{ids[int(stem)]}{dot}{ext}"] = data
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", compression=zipfile.ZIP_STORED) as zout:
        zout.writestr(zipfile.ZipInfo("schema.json", _ZIP_EPOCH), json.dumps(schema, separators=(",", ":")))
        for name in sorted(renamed, key=lambda n: int(n.partition(".")[0])):
            zout.writestr(zipfile.ZipInfo(name, _ZIP_EPOCH), renamed[name])
    return out.getvalue()


def file_types(path: Path | None = None, data: bytes | None = None) -> list[str]:
    """The types a skops file holds beyond skops' defaults (what an allowlist must name), sorted."""
    import skops.io as sio

    found = sio.get_untrusted_types(file=path) if path is not None else sio.get_untrusted_types(data=data)
    return sorted(found)


def derive_trusted_types(types: list[str], user_trusted: list[str], source: str) -> list[str]:
    """The allowlist of a new model: its own types, refusing any outside scikit-learn/numpy/scipy (and the
    fixed list) that `train.trusted_types` does not name. Pure."""
    outside = sorted(t for t in types if not t.startswith(SAFE_PREFIXES) and t not in TRUSTED_TYPES)
    refused = [t for t in outside if t not in user_trusted]
    if refused:
        raise UntrustedTypes(
            f"{source}: types {refused} are outside scikit-learn/numpy/scipy "
            "(rule: list each in train.trusted_types to trust it)"
        )
    return types


def allowed_types(manifest: dict) -> tuple[str, ...]:
    """The types a model may hold to be loaded: those its manifest recorded at training (each of them
    safe by prefix, on the fixed list, or named in the training's train.trusted_types), else the fixed
    list (models from before the manifest recorded them)."""
    recorded = manifest.get("trusted_types")
    if recorded is None:
        return TRUSTED_TYPES
    user = set(manifest.get("user_trusted_types", []))
    return tuple(t for t in recorded if t.startswith(SAFE_PREFIXES) or t in TRUSTED_TYPES or t in user)


def load_model_file(path: Path, trusted: tuple[str, ...] = TRUSTED_TYPES) -> object:
    """Load a skops model file, refusing any type outside the project's allowlist."""
    import skops.io as sio  # here, not at import: readers of TRUSTED_TYPES and MODEL_FILE stay light

    untrusted = sorted(set(sio.get_untrusted_types(file=path)) - set(trusted))
    if untrusted:
        raise UntrustedTypes(
            f"{path}: types {untrusted} not in the project's allowlist (rule: skops trusted types)"
        )
    return sio.load(path, trusted=list(trusted))
