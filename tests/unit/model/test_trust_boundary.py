"""The trust boundary is the project, not the artifact: a model file holding anything that can call code (a
function, a partial of one, a builtin, an operator getter, a class held as a value) is refused by name unless
mlpipe or the project's train.trusted_types names it exactly, even inside scikit-learn, even when the file's
own manifest lists it; the refusal comes before any of the file's objects is built."""

from __future__ import annotations

import builtins
import functools
import io
import json
import operator
import zipfile

import numpy as np
import pytest
import skops.io as sio
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import FunctionTransformer
from sklearn.utils._testing import assert_run_python_script_without_output

from mlpipe.errors import UntrustedTypes
from mlpipe.model.artifact import (
    TRUSTED_TYPES,
    load_model_bytes,
    refused_types,
    schema_callables,
)
from mlpipe.model.loading import load_model_dir

X = np.arange(20, dtype=float).reshape(10, 2)
Y = [0, 1] * 5


def _with_step(func) -> bytes:
    """A fitted logistic regression behind FunctionTransformer(func), as skops bytes (func never called)."""
    model = Pipeline([("t", FunctionTransformer(func)), ("lr", LogisticRegression().fit(X, Y))])
    return sio.dumps(model)


def _payloads(marker) -> dict[str, bytes]:
    code = f"open({str(marker)!r}, 'w').write('ran')"
    return {
        "a scikit-learn helper that runs a script": _with_step(
            functools.partial(assert_run_python_script_without_output, code)
        ),
        "exec": _with_step(functools.partial(builtins.exec, code, {})),
        "an operator getter": _with_step(operator.methodcaller("to_csv", str(marker))),
        "a class held as a value": _with_step(functools.partial(open, str(marker), "w")),
    }


@pytest.mark.parametrize(
    ("what", "refused"),
    [
        (
            "a scikit-learn helper that runs a script",
            "sklearn.utils._testing.assert_run_python_script_without_output",
        ),
        ("exec", "builtins.exec"),
        ("an operator getter", "operator.methodcaller"),
        ("a class held as a value", "io.open"),
    ],
)
def test_a_model_holding_a_callable_is_refused_in_one_line_naming_it_and_nothing_runs(
    tmp_path, what, refused
):
    marker = tmp_path / "marker"
    data = _payloads(marker)[what]
    with pytest.raises(UntrustedTypes) as info:
        load_model_bytes(data, [], "model.skops")
    message = str(info.value)
    assert f"{refused} (callable)" in message and "\n" not in message
    assert message.startswith("model.skops: refused ")
    assert not marker.exists()


def test_the_models_own_manifest_cannot_widen_the_allowlist(tmp_path):
    """A model directory whose manifest lists builtins.exec in both of its trusted lists is still refused:
    loading reads the project's list (passed in), never the manifest's."""
    marker = tmp_path / "marker"
    data = _payloads(marker)["exec"]
    (tmp_path / "model.skops").write_bytes(data)
    import hashlib

    sha = hashlib.sha256(data).hexdigest()
    manifest = {
        "model_file": "model.skops",
        "model_sha256": sha,
        "packages": {},
        "trusted_types": ["builtins.exec", "functools.partial"],
        "user_trusted_types": ["builtins.exec"],
    }
    (tmp_path / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(UntrustedTypes, match=r"builtins\.exec \(callable\)"):
        load_model_dir(tmp_path, sha)
    assert not marker.exists()


def test_a_callable_the_project_names_loads():
    data = _with_step(np.log1p)  # a numpy ufunc: skops' own defaults trust it
    assert load_model_bytes(data, [], "m").predict(X) is not None
    data = _with_step(functools.partial(np.clip, a_min=0, a_max=5))
    with pytest.raises(UntrustedTypes, match=r"numpy\.clip \(callable\)"):
        load_model_bytes(data, [], "m")
    assert load_model_bytes(data, ["numpy.clip"], "m").predict(X) is not None


def test_callables_are_found_wherever_they_sit_in_the_schema():
    data = _with_step(functools.partial(assert_run_python_script_without_output, "x"))
    schema = json.loads(zipfile.ZipFile(io.BytesIO(data)).read("schema.json"))
    found = schema_callables(schema)
    assert "sklearn.utils._testing.assert_run_python_script_without_output" in found
    assert "functools.partial" in found
    assert "sklearn.pipeline.Pipeline" not in found, "an estimator is data"


def test_the_refusal_rule_is_exact_names_for_callables_and_package_prefixes_for_classes_only():
    helper = "sklearn.utils._testing.assert_run_python_script_without_output"
    own_class = "sklearn.neighbors._kd_tree.KDTree"
    test_class = "sklearn.utils._testing.TempMemmap"
    types = sorted([helper, own_class, test_class, "functools.partial", "mypkg.Thing"])
    callables = {helper, "functools.partial"}
    assert refused_types(types, callables, []) == sorted([helper, test_class, "mypkg.Thing"])
    assert refused_types(types, callables, ["mypkg.Thing", helper, test_class]) == []
    assert "functools.partial" in TRUSTED_TYPES, "named by mlpipe: ColumnTransformer's passthrough"
