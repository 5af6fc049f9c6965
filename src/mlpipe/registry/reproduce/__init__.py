"""Reproduce a recorded model from its git commit + DVC data hash, in an isolated git worktree, and
prove it is the same: model bytes, predictions on the recorded test split, metrics, every stage output.

The record is read from MLflow (the tags and the stage-output artifact `track_run` wrote); git makes
the checkout, DVC restores the data and reruns the stages; this module only decides what to compare and
says what it found.

The steps live in record, checkout, rebuild, compare and report; `reproduce` runs them in order."""

from __future__ import annotations

import tempfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from mlpipe.config import PARAMS_FILE, load_params
from mlpipe.errors import Refused
from mlpipe.registry.client import mlflow_client
from mlpipe.registry.refs import resolve_run
from mlpipe.registry.reproduce.checkout import (
    commit_exists,
    isolated_checkout,
    pull_pinned_wheel,
    pull_recorded_data,
    restored_file_hashes,
    share_dvc_storage,
)
from mlpipe.registry.reproduce.compare import compare, compare_in, load_original, verified_original
from mlpipe.registry.reproduce.rebuild import python_major_minor, reproduced_outputs, rerun_stages
from mlpipe.registry.reproduce.record import TEST_SPLIT, read_record, recorded_test_split, refusal
from mlpipe.registry.reproduce.report import Verdict, log_reproduction
from mlpipe.runtime.environments import choose_environment
from mlpipe.runtime.logs import event


def reproduce(root: Path, ref: str, tracking_uri: str, keep: bool = False, env_mode: str = "auto") -> Verdict:
    """Check out the run's commit in isolation, restore its data hash, `dvc repro --force` in the
    commit's own locked environment (`env_mode` auto: the running one when it is that one, else built
    from the commit's uv.lock; current: the running one regardless), compare, and log the verdict as its
    own MLflow run (tagged on the original run and its model versions)."""
    client = mlflow_client(tracking_uri)
    run_id = resolve_run(client, ref).run_id
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
