"""Write access to the registry is not code execution. Someone who can only write to the MLflow registry
(MLflow and skops, no mlpipe code) registers the champion's own pipeline behind a FunctionTransformer that
runs a script, once through a scikit-learn test helper and once through `exec` its own manifest trusts, sets
`mlpipe.sha256` to each file's hash, copies the champion's judged record onto them, and moves `champion`.
Before the service starts and while it runs: nothing runs (the marker file is never written), the service
answers with the judged model or is not ready, and /ready and /metrics say why; `mlpipe promote` of a crafted
version is refused naming the callable."""

from __future__ import annotations

import builtins
import functools
import hashlib
import json
import shutil
from pathlib import Path

import httpx
import pytest
from conftest import mlpipe, registered_model_file, start_server, stop, tracking_client, wait_until

pytestmark = pytest.mark.integration
MODEL = "flights-late"


def craft(client, root: Path, marker: Path, how: str) -> str:
    """A registry writer's version: the champion's pipeline behind a step that writes `marker` when it
    predicts, registered with MLflow and skops alone. Returns its version."""
    import pandas as pd
    import skops.io as sio
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import FunctionTransformer
    from sklearn.utils._testing import assert_run_python_script_without_output

    v1 = client.get_model_version(MODEL, "1")
    run1 = client.get_run(v1.run_id)
    source = registered_model_file(client, MODEL, "1")
    champion = sio.load(source, trusted=sio.get_untrusted_types(file=source))
    code = f"open({str(marker)!r}, 'w').write('ran')"
    if how == "sklearn helper":
        func = functools.partial(assert_run_python_script_without_output, code)
    else:
        func = functools.partial(builtins.exec, code, {})
    step = FunctionTransformer(func, check_inverse=False)
    step.fit(pd.DataFrame(columns=list(champion.feature_names_in_)))
    crafted = Pipeline([("first", step), *champion.steps])

    out = root.parent / f"crafted-{how.replace(' ', '-')}"
    out.mkdir()
    data = sio.dumps(crafted)
    (out / "model.skops").write_bytes(data)
    sha = hashlib.sha256(data).hexdigest()
    manifest = json.loads((source.parent / "manifest.json").read_text())
    types = sio.get_untrusted_types(data=data)
    manifest |= {"model_sha256": sha, "trusted_types": types, "user_trusted_types": types}
    (out / "manifest.json").write_text(json.dumps(manifest))
    profile = Path(client.download_artifacts(run1.info.run_id, "mlpipe/validate/profile.json", str(out)))
    # through the client bound to this project's store: mlflow's fluent API follows a process-wide tracking
    # URI that another test in this worker may have set (the run then landed in another store)
    run = client.create_run(run1.info.experiment_id)
    run_id = run.info.run_id
    for key, value in run1.data.tags.items():
        if not key.startswith("mlflow."):
            client.set_tag(run_id, key, value)
    client.set_tag(run_id, "mlpipe.sha256", sha)
    client.log_artifact(run_id, str(out / "model.skops"), "mlpipe/model")
    client.log_artifact(run_id, str(out / "manifest.json"), "mlpipe/model")
    client.log_artifact(run_id, str(profile), "mlpipe/validate")
    client.set_terminated(run_id)
    mv = client.create_model_version(MODEL, f"runs:/{run_id}/mlpipe/model", run_id=run_id)
    # the best forgery a registry writer has: the champion's own record, copied
    client.set_model_version_tag(MODEL, mv.version, "mlpipe.judged", v1.tags["mlpipe.judged"])
    shutil.rmtree(out)
    return str(mv.version)


def test_a_registry_writer_cannot_run_code_in_the_service_nor_get_a_version_served(
    project_copy, tmp_path, monkeypatch
):
    root = project_copy
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{root / 'mlruns' / 'mlflow.db'}")
    client = tracking_client(root)
    assert client.get_model_version(MODEL, "1").tags["mlpipe.judged"].startswith("passed:"), (
        "the gate's pass is recorded"
    )
    marker = tmp_path / "marker"
    crafted = {how: craft(client, root, marker, how) for how in ("sklearn helper", "exec")}

    refused = mlpipe(root, "promote", f"models:/{MODEL}/{crafted['exec']}", "--reason", "try", check=False)
    message = refused.stderr.strip()
    assert refused.returncode == 1 and "\n" not in message, refused
    assert (
        "refused builtins.exec (callable): not named by mlpipe or params.yaml train.trusted_types" in message
    )

    # champion on a crafted version before the service starts: not ready, and it says why
    client.set_registered_model_alias(MODEL, "champion", crafted["exec"])
    base, proc = start_server(root, "--poll-s", "0.5", wait_ready=False)
    try:
        ready = httpx.get(f"{base}/ready")
        reason = ready.json()["reason"]
        assert ready.status_code == 503 and f"{MODEL} version {crafted['exec']}: judged record" in reason
        assert "does not verify" in reason and "mlpipe promote" in reason
        assert httpx.post(f"{base}/predict", json={"records": []}).status_code == 503

        client.set_registered_model_alias(MODEL, "champion", "1")  # a judged version: served
        wait_until(lambda: httpx.get(f"{base}/ready").status_code == 200, 60)
        example = httpx.get(f"{base}/model").json()["input_example"]

        for version in crafted.values():  # while it runs: kept on version 1, and says why
            client.set_registered_model_alias(MODEL, "champion", version)
            said = f"champion names version {version}, refused; version 1 kept: NotJudged"
            wait_until(lambda s=said: s in httpx.get(f"{base}/ready").json().get("champion_refused", ""), 60)
            ready = httpx.get(f"{base}/ready").json()
            assert ready["ready"] is True and ready["model_version"] == "1", ready
            answer = httpx.post(f"{base}/predict", json=example)
            assert answer.status_code == 200 and answer.json()["model"]["version"] == "1"
            metrics = httpx.get(f"{base}/metrics").text
            assert f'mlpipe_model_refused{{reason="{said}' in metrics
            assert 'mlpipe_model_swaps_total{outcome="refused"}' in metrics

        client.set_registered_model_alias(MODEL, "champion", "1")
        wait_until(lambda: "champion_refused" not in httpx.get(f"{base}/ready").json(), 60)
        assert 'mlpipe_model_refused{reason=""} 0.0' in httpx.get(f"{base}/metrics").text
    finally:
        stop(proc)
    assert not marker.exists(), "code from the registry ran"
