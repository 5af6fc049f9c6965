"""The comparison: the recorded and the rebuilt model's predictions on the same rows, measured in the
environment the stages ran in (here, or a process of the locked one running this module's `main`), and the
row-by-row verdict."""

from __future__ import annotations

import json
import shutil
import sys
import tempfile
from concurrent.futures import Future
from dataclasses import dataclass
from pathlib import Path

from mlpipe.errors import ModelRefused, Refused, ToolError
from mlpipe.model.loading import LoadedModel
from mlpipe.model.manifest import installed_versions
from mlpipe.registry.reproduce.record import Recorded
from mlpipe.runtime.environments import Environment
from mlpipe.runtime.shell import run_tool, tool_env


@dataclass(frozen=True)
class Row:
    item: str
    original: object
    reproduced: object
    same: bool
    counts: bool = True  # environment rows inform, they do not decide


def compare(rec: Recorded, reproduced: dict) -> list[Row]:
    """Rows of the verdict table: data, every stage output, model bytes, predictions, metrics, environment."""
    rows = [Row("data_md5", rec.data_md5, reproduced["data_md5"], rec.data_md5 == reproduced["data_md5"])]
    for relpath, (want, got) in sorted(reproduced.get("data_files", {}).items()):
        rows.append(Row(f"data file {relpath}", want, got, want == got))
    outs = reproduced["stage_outputs"]
    for key in sorted(set(rec.stage_outputs) | set(outs)):
        a, b = rec.stage_outputs.get(key), outs.get(key)
        rows.append(Row(f"output {key}", a, b, a == b))
    rows.append(
        Row(
            "model_sha256",
            rec.model_sha256,
            reproduced["model_sha256"],
            rec.model_sha256 == reproduced["model_sha256"],
        )
    )
    pred = reproduced["predictions"]
    rows.append(Row("predictions", pred["original_sha256"], pred["reproduced_sha256"], pred["identical"]))
    for name in sorted(set(rec.metrics) & set(reproduced["metrics"]) - {"drift_share", "drifted_columns"}):
        a, b = rec.metrics[name], float(reproduced["metrics"][name])
        rows.append(Row(f"metric:{name}", a, b, a == b))
    for name in sorted(rec.versions):
        now = reproduced["versions"].get(name)
        rows.append(Row(f"env {name}", rec.versions[name], now, rec.versions[name] == now, counts=False))
    if rec.mlpipe_code:
        now = reproduced.get("mlpipe_code")
        rows.append(Row(MLPIPE_CODE_ROW, rec.mlpipe_code, now, rec.mlpipe_code == now, counts=False))
    return rows


MLPIPE_CODE_ROW = "env mlpipe code"


def split_scores(model, test_split: Path, columns: list[str]):
    """(the model's outputs (model.outputs.scores: probabilities or values) on the rows of `test_split`,
    their count), the model given the split's `columns`."""
    from mlpipe.data.frames import read_frame
    from mlpipe.model.outputs import scores

    test = read_frame(test_split, columns=columns)
    return scores(model, test[columns]), len(test)


def compare_predictions(original_model, reproduced_model, test_split: Path, original_scores=None) -> dict:
    """Both models' outputs on the same test rows (the original's as given, when they were computed
    already on that split): exact equality and hashes."""
    import numpy as np

    from mlpipe.pipeline.evaluate import predictions_sha256

    cols = list(original_model.feature_names_in_)
    b, rows = split_scores(reproduced_model, test_split, cols)
    a = original_scores if original_scores is not None else split_scores(original_model, test_split, cols)[0]
    return {
        "identical": bool(np.array_equal(a, b)),
        "original_sha256": predictions_sha256(a),
        "reproduced_sha256": predictions_sha256(b),
        "rows": rows,
    }


def compare_in(
    env: Environment,
    original: LoadedModel,
    reproduced: Path,
    split: Path,
    names,
    original_scores=None,
    project_trusted: list[str] | tuple[str, ...] = (),
) -> dict:
    """Predictions of the original (verified, loaded) and the reproduced model on the same rows, and the
    versions of `names`, measured in the environment the stages ran in: here, with the original already
    in memory, or in a process of the locked one (running this module's `main` on a copy of the running
    mlpipe, whichever way it is installed), which loads both there (`original_scores`, computed here,
    are then not used)."""
    if env.kind == "current":
        return _compare(original.model, reproduced, split, names, original_scores, project_trusted)
    import mlpipe

    spec = {
        "original": str(original.path.parent),
        "sha256": original.sha256,
        "reproduced": str(reproduced),
        "split": str(split),
        "names": list(names),
        "trusted": list(project_trusted),
    }
    with tempfile.TemporaryDirectory(prefix="mlpipe-compare-") as tmp:
        shutil.copytree(
            Path(mlpipe.__file__).parent, Path(tmp) / "mlpipe", ignore=shutil.ignore_patterns("__pycache__")
        )
        proc = run_tool(
            [str(env.python), "-m", "mlpipe.registry.reproduce.compare", json.dumps(spec)],
            Path(tmp),
            check=False,
            env=tool_env({"PYTHONPATH": tmp}),
        )
    if proc.returncode != 0:
        tail = (proc.stderr or proc.stdout).strip().splitlines()[-1:] or ["no output"]
        raise ToolError(f"comparing the models in the locked environment {env.python} failed: {tail[0]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def _compare(
    original_model, reproduced: Path, split: Path, names, original_scores=None, project_trusted=()
) -> dict:
    from mlpipe.model.loading import load_model_dir

    b = load_model_dir(reproduced, project_trusted=project_trusted)  # its sha256: its own manifest's
    return {
        "predictions": compare_predictions(original_model, b.model, split, original_scores),
        "versions": installed_versions(sorted(names)),
    }


def main(argv: list[str]) -> int:
    """`python -m mlpipe.registry.reproduce.compare SPEC_JSON`: compare_in's measuring process."""
    from mlpipe.model.loading import load_model_dir

    spec = json.loads(argv[0])
    trusted = spec.get("trusted", [])
    original = load_model_dir(
        Path(spec["original"]), spec["sha256"], project_trusted=trusted
    )  # its checks here
    got = _compare(
        original.model, Path(spec["reproduced"]), Path(spec["split"]), spec["names"], None, trusted
    )
    print(json.dumps(got))
    return 0


def load_original(
    client, ref: str, dest: Path, split: Path | None, project_trusted: list[str] | tuple[str, ...] = ()
) -> tuple[LoadedModel, object]:
    """(the recorded model of `ref`, verified, in `dest`; its scores on `split` when there is one)."""
    from mlpipe.registry.models import load_registered

    original, _ = load_registered(
        client, ref, allow_version_mismatch=True, dest=dest, project_trusted=project_trusted
    )
    if split is None:
        return original, None
    return original, split_scores(original.model, split, list(original.model.feature_names_in_))[0]


def verified_original(loading: Future, ref: str) -> tuple[LoadedModel, object]:
    """What `loading` (load_original) produced, once it has; Refused when the model failed its checks."""
    try:
        return loading.result()
    except ModelRefused as exc:
        raise Refused(
            f"reproduce: the recorded model of {ref} fails its checks ({exc}) "
            "(rule: only a verified model is compared; restore its artifact from the registry's store)"
        ) from None


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
