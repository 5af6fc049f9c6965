"""The model file: canonical skops bytes (equal models, equal files) and loading it with the project's
own allowlist of types, never the list a file names for itself."""

from __future__ import annotations

import hashlib
import io
import json
import re
import zipfile
from pathlib import Path

from mlpipe.errors import UntrustedTypes

MODEL_FILE = "model.skops"

# The types mlpipe's code names: with skops' own defaults (scikit-learn estimators, numpy/scipy ufuncs, plain
# containers and dtypes) and the project's committed `train.trusted_types`, the only ones a model may hold.
# A model file is never trusted to name its own safe types: neither the list its manifest records nor the one
# MLflow writes in its MLmodel widens this (see STACK.md on loading models).
TRUSTED_TYPES = (
    "sklearn.ensemble._hist_gradient_boosting.binning._BinMapper",
    # skops 0.16 flags TreePredictor and Tree as unsafe: their node arrays hold indices scikit-learn follows
    # without bounds checks, so a crafted file can crash (or read beyond) the process that predicts; it
    # cannot name code to run. mlpipe trusts them because every tree model needs them and the bytes served
    # are bounded by the project: the file must hash to the sha256 recorded at training, and the service
    # loads only a version whose judged record (registry.judged, an HMAC under the project's key) names that
    # sha256, which only this project's gate or `mlpipe promote` can write.
    "sklearn.ensemble._hist_gradient_boosting.predictor.TreePredictor",
    "sklearn._loss.link.LogitLink",
    "sklearn._loss.link.Interval",
    "sklearn._loss.loss.HalfBinomialLoss",
    "sklearn._loss._loss.CyHalfBinomialLoss",
    "sklearn.tree._tree.Tree",
    "numpy.dtype",
    # ColumnTransformer's fitted passthrough is FunctionTransformer(partial(check_array)): the partial and the
    # function are named here; the function inside any partial is checked on its own (a callable node), so a
    # partial of anything not named is still refused.
    "functools.partial",
    "sklearn.utils.validation.check_array",
)
# A *class* from these packages whose instances skops builds as data (a new object, then its state set) is
# trusted without being named, so any scikit-learn estimator loads. Never a callable: see CALLING_LOADERS.
SAFE_PREFIXES = ("sklearn.", "numpy.", "scipy.")
# ... unless it comes from a test helper module (they run scripts, write files): those must be named.
_TEST_MODULE = re.compile(r"(^|\.)(_?testing|tests?|_testutils|_pytesttester|conftest)(\.|$)")
# skops loaders that build an object as data; every other loader calls something the file names (a function,
# a partial, a class or builtin held as a value, a bound method, an operator getter, a constructor with
# arguments): whatever such a node names is loaded only when mlpipe or the project names it exactly.
DATA_LOADERS = frozenset(
    {
        "ObjectNode",
        "DictNode",
        "DefaultDictNode",
        "ListNode",
        "SetNode",
        "TupleNode",
        "BytesNode",
        "BytearrayNode",
        "SliceNode",
        "JsonNode",
        "NdArrayNode",
        "MaskedArrayNode",
        "RandomStateNode",
        "RandomGeneratorNode",
        "DTypeNode",
        "SparseMatrixNode",
        "CachedNode",
        "TreeNode",  # its constructor is fixed to sklearn.tree._tree.Tree, whatever the file says
    }
)
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


def schema_callables(schema: object) -> set[str]:
    """The names every node of a skops schema that loads by calling something would call, walked from the
    JSON itself (every dict with a `__loader__` is a node), so a node skops would build is never missed."""
    found: set[str] = set()
    stack = [schema]
    while stack:
        node = stack.pop()
        if isinstance(node, list):
            stack.extend(node)
            continue
        if not isinstance(node, dict):
            continue
        stack.extend(node.values())
        loader = node.get("__loader__")
        if loader is None or loader in DATA_LOADERS:
            continue
        found.add(f"{node.get('__module__')}.{node.get('__class__')}")
        content = node.get("content")
        if loader == "MethodNode" and isinstance(content, dict) and isinstance(content.get("obj"), dict):
            owner = content["obj"]
            found.add(f"{owner.get('__module__')}.{owner.get('__class__')}.{content.get('func')}")
    return found


def refused_types(
    types: list[str], callables: set[str], project_trusted: list[str] | tuple[str, ...]
) -> list[str]:
    """Of `types` (those a file holds beyond skops' defaults), the ones not to load (pure): any not named by
    TRUSTED_TYPES or `project_trusted` that is a callable, or is not a class of scikit-learn/numpy/scipy
    (outside their test helpers)."""
    named = set(TRUSTED_TYPES) | set(project_trusted)

    def by_package(t: str) -> bool:
        return t not in callables and t.startswith(SAFE_PREFIXES) and not _TEST_MODULE.search(t)

    return sorted(t for t in types if t not in named and not by_package(t))


def vet_model_bytes(data: bytes, project_trusted: list[str] | tuple[str, ...], source: str) -> list[str]:
    """The types a skops file holds beyond skops' defaults, once each is allowed (refused_types); otherwise
    UntrustedTypes naming every refused type, in one line."""
    import skops.io as sio

    with zipfile.ZipFile(io.BytesIO(data)) as z:
        callables = schema_callables(json.loads(z.read("schema.json")))
    types = sorted(sio.get_untrusted_types(data=data))
    refused = refused_types(types, callables, project_trusted)
    if refused:
        kinds = ["callable" if t in callables else "type" for t in refused]
        what = ", ".join(f"{t} ({k})" for t, k in zip(refused, kinds, strict=True))
        raise UntrustedTypes(
            f"{source}: refused {what}: not named by mlpipe or params.yaml train.trusted_types (rule: a "
            "callable, or a type outside scikit-learn/numpy/scipy, loads only when the project names it; "
            "nothing stored with a model widens that)"
        )
    return types


def derive_trusted_types(path: Path, user_trusted: list[str], source: str) -> list[str]:
    """The types a newly trained model file holds beyond skops' defaults, for its manifest (information:
    loading never reads it back); refused at training exactly as loading would refuse them."""
    return vet_model_bytes(path.read_bytes(), user_trusted, source)


def load_model_file(path: Path, project_trusted: list[str] | tuple[str, ...] = ()) -> object:
    """Load a skops model file, refusing any type outside mlpipe's and the project's allowlist."""
    return load_model_bytes(path.read_bytes(), project_trusted, str(path))


def load_model_bytes(data: bytes, project_trusted: list[str] | tuple[str, ...], source: str) -> object:
    """Load skops bytes once vet_model_bytes allowed every type they hold (the bytes checked are the bytes
    loaded)."""
    import skops.io as sio  # here, not at import: readers of TRUSTED_TYPES and MODEL_FILE stay light

    return sio.loads(data, trusted=vet_model_bytes(data, project_trusted, source))
