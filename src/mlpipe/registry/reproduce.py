"""Reproduce a recorded model from its git commit + DVC data hash, in an isolated git worktree, and
prove it is the same: model bytes, predictions on the recorded test split, metrics, every stage output.

The record is read from MLflow (the tags and the stage-output artifact `track_run` wrote); git makes
the checkout, DVC restores the data and reruns the stages; this module only decides what to compare and
says what it found."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path

import yaml

from mlpipe.config import PARAMS_FILE, load_params
from mlpipe.errors import ModelRefused, Refused, ToolError
from mlpipe.model.loading import LoadedModel
from mlpipe.model.manifest import installed_versions
from mlpipe.registry import tags as tag
from mlpipe.registry.client import mlflow_client
from mlpipe.registry.refs import resolve_run_id, versions_of_run
from mlpipe.runtime.dvc_config import merge_local_config
from mlpipe.runtime.environments import Environment, choose_environment
from mlpipe.runtime.lockfiles import dvc_file_md5, stage_output_hashes
from mlpipe.runtime.logs import event
from mlpipe.runtime.pin import VENDOR_DVC
from mlpipe.runtime.shell import pid_alive, run_tool, stop_process_group, tool_env

TEST_SPLIT = "artifacts/split/test.parquet"
ABANDON_POLL_S = 0.2  # how often the rebuild looks whether the recorded model failed its checks


@dataclass(frozen=True)
class Recorded:
    """What a training run recorded about itself."""

    run_id: str
    experiment_id: str
    commit: str
    dirty: bool
    data_md5: str
    model_sha256: str
    stage_outputs: dict[str, str]  # "stage:path" -> md5
    metrics: dict[str, float]
    versions: dict[str, str]
    predictions_sha256: str | None = None
    python: str = ""  # the interpreter's version the run was recorded with
    mlpipe_code: str = ""  # the code hash of the mlpipe that trained it (runtime.pin), when recorded


@dataclass(frozen=True)
class Row:
    item: str
    original: object
    reproduced: object
    same: bool
    counts: bool = True  # environment rows inform, they do not decide


@dataclass
class Verdict:
    ref: str
    run_id: str
    commit: str
    data_md5: str
    rows: list[Row] = field(default_factory=list)
    reproduction_run_id: str | None = None
    checkout: str | None = None  # kept isolated checkout (--keep)
    environment: str = ""  # where the stages ran (runtime.environments.Environment.describe)

    @property
    def identical(self) -> bool:
        return all(r.same for r in self.rows if r.counts)

    def as_dict(self) -> dict:
        def pair(item: str) -> dict:
            row = next((r for r in self.rows if r.item == item), None)
            return {"original": row.original, "reproduced": row.reproduced} if row else {}

        metrics = [r for r in self.rows if r.item.startswith("metric:")]
        return {
            "ref": self.ref,
            "run_id": self.run_id,
            "identical": self.identical,
            "commit": self.commit,
            "data_md5": self.data_md5,
            "model_sha256": pair("model_sha256"),
            "predictions_identical": next((r.same for r in self.rows if r.item == "predictions"), False),
            "predictions_sha256": pair("predictions"),
            "metrics": {
                "original": {r.item[7:]: r.original for r in metrics},
                "reproduced": {r.item[7:]: r.reproduced for r in metrics},
            },
            "different": [r.item for r in self.rows if r.counts and not r.same],
            "rows": [asdict(r) for r in self.rows],
            "reproduction_run_id": self.reproduction_run_id,
            "checkout": self.checkout,
            "environment": self.environment,
        }


# ---- the record -------------------------------------------------------------------------------


def recorded_from_run(run, dvc_outputs: dict[str, dict[str, str]] | None = None) -> Recorded:
    """Parse the record of a training run (pure): its lineage tags, and `dvc_outputs`, the md5 of every
    stage output ({stage: {path: md5}}, its artifact tag.DVC_OUTPUTS_ARTIFACT); None: the one tag per
    output that runs logged before that artifact carry."""
    tags = run.data.tags
    if not tag.read(tags, tag.MODEL_SHA256):
        raise Refused(f"run {run.info.run_id} is not an mlpipe training run (no {tag.MODEL_SHA256} tag)")
    outputs = tag.legacy_dvc_outputs(tags) if dvc_outputs is None else dvc_outputs
    return Recorded(
        run_id=run.info.run_id,
        experiment_id=run.info.experiment_id,
        commit=tag.read(tags, tag.GIT_COMMIT, ""),
        dirty=tags.get(tag.GIT_DIRTY, "true") != "false",
        data_md5=tags.get(tag.DATA_MD5, ""),
        model_sha256=tag.read(tags, tag.MODEL_SHA256),
        stage_outputs={f"{s}:{p}": md5 for s, outs in outputs.items() for p, md5 in outs.items()},
        metrics=dict(run.data.metrics),
        versions={
            k[len(tag.VERSION_PREFIX) :]: v for k, v in tags.items() if k.startswith(tag.VERSION_PREFIX)
        },
        python=tags.get(tag.PYTHON, ""),
        mlpipe_code=tags.get(tag.MLPIPE_CODE, ""),
    )


def read_record(client, run_id: str) -> Recorded:
    """The record of training run `run_id`, its stage outputs' md5s from its artifact
    tag.DVC_OUTPUTS_ARTIFACT (a run logged before that artifact: from its per-output tags)."""
    run = client.get_run(run_id)
    rec = recorded_from_run(run)
    if rec.stage_outputs:  # logged before the artifact
        return rec
    return recorded_from_run(run, recorded_dvc_outputs(client, run_id))


def recorded_dvc_outputs(client, run_id: str) -> dict[str, dict[str, str]]:
    """{stage: {path: md5}} of the run's artifact tag.DVC_OUTPUTS_ARTIFACT; empty when it has none."""
    folder = tag.DVC_OUTPUTS_ARTIFACT.rpartition("/")[0]
    if not any(f.path == tag.DVC_OUTPUTS_ARTIFACT for f in client.list_artifacts(run_id, folder)):
        return {}
    with tempfile.TemporaryDirectory(prefix="mlpipe-record-") as tmp:
        return json.loads(Path(client.download_artifacts(run_id, tag.DVC_OUTPUTS_ARTIFACT, tmp)).read_text())


def refusal(rec: Recorded, commit_exists: bool) -> str | None:
    """Why this record cannot be reproduced, or None (pure)."""
    if not rec.commit:
        return (
            f"run {rec.run_id} has no git commit recorded; only runs made by `mlpipe run` inside a git "
            "repository can be reproduced"
        )
    if rec.dirty:
        return (
            f"run {rec.run_id} was recorded from a dirty tree "
            f"(uncommitted changes on top of {rec.commit[:12]}): "
            "the code that trained it is in no commit. Commit your changes and run `mlpipe run` again; "
            "reproduce that run"
        )
    if not commit_exists:
        return (
            f"commit {rec.commit} of run {rec.run_id} no longer exists in this repository "
            "(history rewritten, "
            "or a clone without it): fetch it (git fetch --all) or reproduce in a clone that has it"
        )
    if not rec.data_md5:
        return f"run {rec.run_id} has no DVC data hash recorded (tag mlpipe.data_md5)"
    return None


# ---- the comparison (pure) ---------------------------------------------------------------------


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


def verdict_line(v: Verdict) -> str:
    """The verdict in one line; when NOT IDENTICAL, the cause first: the environment rows (mlpipe's
    version and code hash, packages) that differ, else the items that differ. Pure."""
    if v.identical:
        return "verdict: IDENTICAL"
    env = [r for r in v.rows if not r.counts and not r.same]
    causes = [
        f"{r.item[4:]} {_short(r.original)} (recorded) vs {_short(r.reproduced)} (reproduced)" for r in env
    ]
    different = ", ".join(r.item for r in v.rows if r.counts and not r.same)
    if causes:
        return f"verdict: NOT IDENTICAL, cause: {'; '.join(causes)} (differ: {different})"
    return f"verdict: NOT IDENTICAL, same mlpipe and packages; differ: {different}"


def render_table(v: Verdict) -> str:
    width = max(len(r.item) for r in v.rows) if v.rows else 10
    lines = [
        verdict_line(v),
        f"reproduce {v.ref}: run {v.run_id}, commit {v.commit[:12]}, data md5 {v.data_md5}",
        *([f"environment: {v.environment}"] if v.environment else []),
        f"{'':2}{'item':<{width}}  {'original':<36}  {'reproduced':<36}  verdict",
    ]
    for r in v.rows:
        mark = "same" if r.same else ("DIFFERENT" if r.counts else "differs (environment, informative)")
        lines.append(f"{'':2}{r.item:<{width}}  {_short(r.original):<36}  {_short(r.reproduced):<36}  {mark}")
    lines.append(
        f"verdict: {'IDENTICAL' if v.identical else 'NOT IDENTICAL'}"
        + ("" if v.identical else f" ({', '.join(r.item for r in v.rows if r.counts and not r.same)})")
    )
    return "\n".join(lines)


def _short(value: object) -> str:
    text = str(value)
    return text if len(text) <= 36 else text[:33] + "..."


# ---- the I/O edges -----------------------------------------------------------------------------


def commit_exists(root: Path, commit: str) -> bool:
    return run_tool(["git", "cat-file", "-e", f"{commit}^{{commit}}"], root, check=False).returncode == 0


WORKTREE_PREFIX = "mlpipe-reproduce-"
OWNER_FILE, KEEP_FILE = "owner.pid", "keep"


def remove_orphan_worktrees(root: Path) -> list[Path]:
    """Remove the reproduce worktrees of `root` whose owner process is dead (a kill -9 skips the
    cleanup); kept ones (--keep) and those of a running reproduce stay. Returns the removed ones."""
    listed = run_tool(["git", "worktree", "list", "--porcelain"], root, check=False).stdout
    removed = []
    for line in listed.splitlines():
        path = Path(line.removeprefix("worktree ")) if line.startswith("worktree ") else None
        if path is None or not path.parent.name.startswith(WORKTREE_PREFIX):
            continue
        base = path.parent
        owner = base / OWNER_FILE
        if (base / KEEP_FILE).exists() or (owner.exists() and pid_alive(int(owner.read_text() or 0))):
            continue
        run_tool(["git", "worktree", "remove", "--force", str(path)], root, check=False)
        shutil.rmtree(base, ignore_errors=True)
        removed.append(path)
    if removed:
        run_tool(["git", "worktree", "prune"], root, check=False)
        event("orphan_worktrees_removed", count=len(removed))
    return removed


@contextlib.contextmanager
def isolated_checkout(root: Path, commit: str, keep: bool = False) -> Iterator[Path]:
    """A detached git worktree of `commit` in a temporary directory; the user's tree is never touched.
    Worktrees a killed reproduce left behind (their owner process gone, not kept on purpose) are removed
    first."""
    remove_orphan_worktrees(root)
    base = Path(tempfile.mkdtemp(prefix=WORKTREE_PREFIX))
    (base / OWNER_FILE).write_text(str(os.getpid()))
    if keep:
        (base / KEEP_FILE).touch()
    wt = base / "checkout"
    run_tool(["git", "worktree", "add", "--detach", "--quiet", str(wt), commit], root)
    try:
        yield wt
    finally:
        if not keep:
            run_tool(["git", "worktree", "remove", "--force", str(wt)], root, check=False)
            shutil.rmtree(base, ignore_errors=True)
            run_tool(["git", "worktree", "prune"], root, check=False)


def share_dvc_storage(root: Path, wt: Path) -> None:
    """Point the worktree's DVC at the project's cache and remotes (as the project resolves them), merged
    into its git-ignored .dvc/config.local; the committed config stays as it was."""
    from dvc.repo import Repo

    with Repo(str(root)) as repo:
        cache_dir = Path(repo.cache.local.path).parents[1]  # <cache>/files/md5 -> <cache>
        remotes = {name: dict(cfg) for name, cfg in repo.config["remote"].items()}
    settings = {"cache": {"dir": str(cache_dir)}}
    settings.update({f'remote "{name}"': {"url": cfg["url"]} for name, cfg in remotes.items()})
    merge_local_config(wt / ".dvc", settings)  # what else it holds stays (the plots template's name)


def pull_recorded_data(wt: Path, data_md5: str) -> None:
    """`dvc pull data.dvc` in the worktree: from the shared cache, else the remote; refuse when neither
    has it."""
    found = dvc_file_md5(wt / "data.dvc")
    if found != data_md5:
        raise Refused(
            f"the commit's data.dvc names {found}, the run recorded {data_md5}: the record and the "
            "commit disagree, so this run cannot be reproduced from its commit"
        )
    proc = run_tool(["dvc", "pull", "data.dvc"], wt, check=False)
    if proc.returncode != 0:
        tail = " ".join((proc.stderr or proc.stdout).strip().splitlines()[-3:])
        raise Refused(
            f"data md5 {data_md5} is in neither the DVC cache nor the remote ({tail}). Restore the "
            "remote from a backup, or reproduce on a machine whose cache holds it"
        )


def pull_pinned_wheel(wt: Path) -> None:
    """`dvc pull vendor.dvc` in the worktree of a commit that pins mlpipe's wheel (a project made by
    `mlpipe init`): from the shared cache, else the remote; Refused naming the wheel when neither has it."""
    if not (wt / VENDOR_DVC).exists():
        return
    proc = run_tool(["dvc", "pull", VENDOR_DVC], wt, check=False)
    if proc.returncode != 0:
        tail = " ".join((proc.stderr or proc.stdout).strip().splitlines()[-3:])
        raise Refused(
            f"the commit pins mlpipe's wheel ({VENDOR_DVC}), which is in neither the DVC cache nor the "
            f"remote ({tail}): restore the remote, or reproduce where the cache holds it"
        )


def restored_file_hashes(wt: Path, data_md5: str) -> dict[str, tuple[str | None, str | None]]:
    """{relpath: (md5 the snapshot lists, md5 of the restored file's content)}, hashed afresh with DVC's
    own file hash: DVC trusts its cache on checkout, this proves the bytes the stages will read."""
    from dvc.repo import Repo
    from dvc_data.hashfile.hash import file_md5

    with Repo(str(wt)) as repo:
        listing = Path(repo.cache.local.oid_to_path(data_md5))
    entries = {e["relpath"]: e["md5"] for e in json.loads(listing.read_text())}
    data = wt / "data"
    present = {p.relative_to(data).as_posix() for p in data.rglob("*") if p.is_file()}
    return {
        rel: (entries.get(rel), file_md5(str(data / rel)) if rel in present else None)
        for rel in sorted(set(entries) | present)
    }


def rerun_stages(wt: Path, python: Path, abandon: Callable[[], bool] = lambda: False) -> bool:
    """`dvc repro --force` in the worktree with the environment of `python` (its bin/ first on PATH, so
    the stages' `python` is that one) and the commit's own code first on the import path. In a process
    group of its own, stopped whole (with the stages it started) as soon as `abandon()` turns true (then
    False is returned) or this process unwinds."""
    bindir = str(python.parent)
    imports = [str(wt / "src")]
    if python == Path(
        sys.executable
    ):  # the running environment: its own import path stays, below the commit's
        imports += [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p]
    env = tool_env({"PYTHONPATH": os.pathsep.join(imports)})
    env["PATH"] = bindir + os.pathsep + env["PATH"]
    with tempfile.TemporaryFile("w+") as out:
        proc = subprocess.Popen(
            [str(python.parent / "dvc"), "repro", "--force"],
            cwd=wt,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            process_group=0,
        )
        try:
            while proc.poll() is None:
                if abandon():
                    return False
                with contextlib.suppress(subprocess.TimeoutExpired):
                    proc.wait(timeout=ABANDON_POLL_S)
        finally:
            if proc.poll() is None:
                stop_process_group(proc, grace_s=10)
        if proc.returncode != 0:
            out.seek(0)
            tail = "\n".join(out.read().strip().splitlines()[-10:])
            raise ToolError(f"dvc repro --force failed in the isolated checkout:\n{tail}")
    return True


def reproduced_outputs(wt: Path) -> dict:
    """Hashes and metrics of what `dvc repro` produced in the worktree."""
    lock = yaml.safe_load((wt / "dvc.lock").read_text())
    data_md5 = next((d["md5"] for d in lock["stages"]["validate"]["deps"] if d["path"] == "data"), "")
    return {
        "data_md5": data_md5,
        "stage_outputs": {
            f"{s}:{p}": md5
            for s, outs in stage_output_hashes(wt / "dvc.lock").items()
            for p, md5 in outs.items()
        },
        "model_sha256": json.loads((wt / "artifacts/model/manifest.json").read_text())["model_sha256"],
        "metrics": json.loads((wt / "metrics.json").read_text()),
    }


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
            [str(env.python), "-m", "mlpipe.registry.reproduce", json.dumps(spec)],
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
    """`python -m mlpipe.registry.reproduce SPEC_JSON`: compare_in's measuring process."""
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


def cached_output(root: Path, md5: str | None, fallback: Path | None) -> Path | None:
    """A stage output as recorded (from the project's DVC cache by its md5); `fallback` when absent."""
    from dvc.repo import Repo

    if md5:
        with Repo(str(root)) as repo:
            path = Path(repo.cache.local.oid_to_path(md5))
        if path.exists():
            return path
    return fallback


def recorded_test_split(root: Path, rec: Recorded, fallback: Path | None) -> Path | None:
    """The test split the run recorded, from the DVC cache by its md5; else `fallback` (the reproduced
    one)."""
    return cached_output(root, rec.stage_outputs.get(f"split:{TEST_SPLIT}"), fallback)


def reproduce(root: Path, ref: str, tracking_uri: str, keep: bool = False, env_mode: str = "auto") -> Verdict:
    """Check out the run's commit in isolation, restore its data hash, `dvc repro --force` in the
    commit's own locked environment (`env_mode` auto: the running one when it is that one, else built
    from the commit's uv.lock; current: the running one regardless), compare, and log the verdict as its
    own MLflow run (tagged on the original run and its model versions)."""
    client = mlflow_client(tracking_uri)
    run_id = resolve_run_id(client, ref)
    rec = read_record(client, run_id)
    trusted = load_params(root / PARAMS_FILE).train.trusted_types  # the project's, never the model's
    why = refusal(rec, commit_exists(root, rec.commit) if rec.commit else False)
    if why:
        raise Refused(why)
    with (
        tempfile.TemporaryDirectory(prefix="mlpipe-original-") as tmp,
        ThreadPoolExecutor(max_workers=1, thread_name_prefix="mlpipe-original") as beside,
    ):
        # The recorded model is downloaded, verified (the file's sha256 and types; its packages are
        # checked where it is compared) and scored on the recorded test split beside the checkout and the
        # rebuild, which wait on subprocesses. One that fails its checks cannot be compared with anything:
        # the rebuild is then abandoned.
        recorded_split = recorded_test_split(root, rec, None)
        loading = beside.submit(load_original, client, ref, Path(tmp), recorded_split, trusted)
        with isolated_checkout(root, rec.commit, keep=keep) as wt:
            share_dvc_storage(root, wt)
            pull_pinned_wheel(wt)  # before the environment: a locked one installs mlpipe from it
            env = choose_environment(env_mode, wt, root, python_major_minor(rec.python))
            event("reproduce_environment", kind=env.kind, python=str(env.python), reused=env.reused)
            pull_recorded_data(wt, rec.data_md5)
            data_files = restored_file_hashes(wt, rec.data_md5)
            if loading.done():
                verified_original(loading, ref)  # known to fail already: refused before the rebuild
            rerun_stages(wt, env.python, abandon=lambda: loading.done() and loading.exception() is not None)
            original, original_scores = verified_original(loading, ref)
            got = reproduced_outputs(wt) | {"data_files": data_files}
            split = recorded_split or wt / TEST_SPLIT
            got |= compare_in(
                env, original, wt / "artifacts/model", split, rec.versions, original_scores, trusted
            )
            got["mlpipe_code"] = env.mlpipe_code
            verdict = Verdict(
                ref=ref,
                run_id=run_id,
                commit=rec.commit,
                data_md5=rec.data_md5,
                rows=compare(rec, got),
                checkout=str(wt) if keep else None,
                environment=env.describe(),
            )
    verdict.reproduction_run_id = log_reproduction(client, rec, verdict)
    return verdict


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


def python_major_minor(version: str) -> str:
    """ "3.11" of a recorded "3.11.7"; the running interpreter's when nothing was recorded. Pure."""
    parts = version.split(".")[:2] if version else [str(sys.version_info[0]), str(sys.version_info[1])]
    return ".".join(parts)


def log_reproduction(client, rec: Recorded, v: Verdict) -> str:
    """The reproduction as its own run (tags + verdict JSON + table), and its verdict on the original
    run and model versions, so the MLflow UI shows which models have been proven."""
    from datetime import UTC, datetime

    word = "identical" if v.identical else "different"
    run = client.create_run(
        rec.experiment_id,
        run_name=f"reproduce-{rec.run_id[:8]}",
        tags={
            tag.REPRODUCES: rec.run_id,
            tag.REPRODUCTION_VERDICT: word,
            tag.REPRODUCTION_DIFFERENT: ",".join(r.item for r in v.rows if r.counts and not r.same)[:5000],
            tag.GIT_COMMIT: rec.commit,
            tag.DATA_MD5: rec.data_md5,
            tag.KIND: "reproduction",
        },
    )
    rid = run.info.run_id
    client.log_metric(rid, "identical", float(v.identical))
    client.log_dict(rid, {**v.as_dict(), "reproduction_run_id": rid}, "reproduction.json")
    client.log_text(rid, render_table(v), "reproduction.txt")
    client.set_terminated(rid, "FINISHED")
    stamp = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    note = f"{word} ({stamp}, run {rid})"
    client.set_tag(rec.run_id, tag.REPRODUCED, note)
    for mv in versions_of_run(client, rec.run_id):
        client.set_model_version_tag(mv.name, mv.version, tag.REPRODUCED, note)
    return rid


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
