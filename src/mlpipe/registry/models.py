"""Registered models: register a run's model as the `challenger`, read the champion's record, and fetch
a registered model through the safe loader."""

from __future__ import annotations

import tempfile
from pathlib import Path

from mlpipe.errors import ModelRefused, Refused
from mlpipe.model.loading import MANIFEST_FILE, LoadedModel, load_model_dir
from mlpipe.registry import tags as tag
from mlpipe.registry.aliases import CHALLENGER, CHAMPION, REGISTRY_WAIT_S, aliases_of, registry_lock, rollback
from mlpipe.registry.client import mlflow_client
from mlpipe.registry.refs import Resolved, resolve_run, versions_of_run
from mlpipe.registry.tracking import MODEL_ARTIFACTS, RunRecord
from mlpipe.runtime.logs import event
from mlpipe.runtime.signing import SigningKey, read_signing_key

PROFILE_ARTIFACT = "mlpipe/validate/profile.json"


def registered_description(name: str) -> str:
    """The registered model's description (its registry page): who registers versions, what the aliases
    mean, where a version's story is."""
    return (
        "Versions are registered by `mlpipe run`, one per new model, each from a committed tree and a "
        "DVC data hash. `challenger`: the latest version. `champion`: the version `mlpipe serve` serves, "
        "moved only by the gate or `mlpipe promote` (a version without their signed record is never "
        "served). A version's description opens with its gate decision; "
        f"`mlpipe lineage models:/{name}/N` shows its code, data and split, "
        f"`mlpipe reproduce models:/{name}/N` rebuilds it byte for byte."
    )


def register_model(tracking_uri: str, rec: RunRecord) -> tuple[str, list[str]]:
    """Register the run's model (once) as a new version aliased `challenger` (the promotion gate moves
    `champion`). A model whose bytes (sha256) and data a version already holds is that version: a run
    from a new commit that trains the same model registers nothing new. Returns (version, its aliases)."""
    from mlflow.exceptions import MlflowException

    client = mlflow_client(tracking_uri)
    existing = versions_of_run(client, rec.run_id, rec.model_name) or same_model_versions(client, rec)
    if existing:  # this run's version, or the version of these very bytes: never a second one
        mv = existing[0]
        if mv.run_id != rec.run_id:
            event("same_model_bytes", model=rec.model_name, version=mv.version, run=rec.run_id)
    else:
        about = registered_description(rec.model_name)
        try:
            if not client.get_registered_model(rec.model_name).description:
                client.update_registered_model(rec.model_name, description=about)
        except MlflowException:
            client.create_registered_model(rec.model_name, description=about)
        # A tracking server accepts a `models:/<model id>` source only with the model id named too.
        model_id = rec.model_uri.removeprefix("models:/") if rec.model_uri.startswith("models:/m-") else None
        mv = client.create_model_version(
            rec.model_name,
            rec.model_uri,
            run_id=rec.run_id,
            model_id=model_id,
            tags={
                tag.DATA_MD5: rec.data_md5 or "",
                tag.GIT_COMMIT: rec.git_commit or "",
                tag.MODEL_SHA256: rec.model_sha256,
            },
        )
        if model_id:
            link_logged_model(client, model_id, rec.model_name, str(mv.version))
        client.set_registered_model_alias(
            rec.model_name, CHALLENGER, mv.version
        )  # the gate decides on champion
    version = str(mv.version)
    return version, aliases_of(client, rec.model_name, version)


def link_logged_model(client, model_id: str, name: str, version: str) -> None:
    """Name the version on its logged model (the tag `mlflow.register_model` writes and the UI's model page
    reads); `create_model_version` alone leaves that page saying "Not registered"."""
    import json

    from mlflow.utils.mlflow_tags import MLFLOW_MODEL_VERSIONS

    found = client.get_logged_model(model_id).tags.get(MLFLOW_MODEL_VERSIONS)
    versions = json.loads(found) if found else []
    entry = {"name": name, "version": version}
    if entry not in versions:
        client.set_logged_model_tags(model_id, {MLFLOW_MODEL_VERSIONS: json.dumps([*versions, entry])})


def versions_holding(client, model_name: str, model_sha256: str) -> list:
    """The versions of `model_name` whose recorded model bytes are `model_sha256` (tagged under the current
    key or, registered before it was shortened, the old one)."""
    found: dict[str, object] = {}
    for key in tag.spellings(tag.MODEL_SHA256):
        for v in client.search_model_versions(f"name = '{model_name}' and tags.`{key}` = '{model_sha256}'"):
            found.setdefault(str(v.version), v)
    return list(found.values())


def same_model_versions(client, rec: RunRecord) -> list:
    """Versions of `rec.model_name` holding these exact model bytes trained on the same data: the champion
    first when it is one of them, then the newest (stores from before this rule hold duplicates)."""
    from mlpipe.registry.aliases import alias_version

    found = versions_holding(client, rec.model_name, rec.model_sha256)
    same = [v for v in found if v.tags.get(tag.DATA_MD5, "") == (rec.data_md5 or "")]
    champion = alias_version(client, rec.model_name, CHAMPION) if same else None
    return sorted(same, key=lambda v: (str(v.version) != champion, -int(v.version)))


def judged_version_of(tracking_uri: str, model_name: str, model_sha256: str) -> str | None:
    """A version of `model_name` holding these exact model bytes that the gate has judged already, or None:
    a run that trained them again gets that version, and the gate's decision stands (nothing to probe)."""
    found = versions_holding(mlflow_client(tracking_uri), model_name, model_sha256)
    judged = [v for v in found if v.tags.get(tag.GATE_DECISION)]
    return str(judged[0].version) if judged else None


def champion_metrics(tracking_uri: str, model_name: str) -> tuple[str, dict[str, float]] | None:
    """(version, test metrics) of the current champion, or None when there is none."""
    from mlflow.exceptions import MlflowException

    client = mlflow_client(tracking_uri)
    try:
        mv = client.get_model_version_by_alias(model_name, CHAMPION)
    except MlflowException:
        return None
    return str(mv.version), client.get_run(mv.run_id).data.metrics


def load_registered(
    client,
    ref: str,
    allow_version_mismatch: bool = False,
    dest: Path | None = None,
    project_trusted: list[str] | tuple[str, ...] = (),
    expected_sha256: str | None = None,
) -> tuple[LoadedModel, Resolved]:
    """(verified model, what `ref` resolved to: its run, read once) for a run id or models:/ reference: the
    files of the logged model the version (or the run) names, the one copy `mlflow models serve` serves too,
    checked against the run's recorded sha256 (and `expected_sha256`, the one a judged record names, when
    given), loaded with the project's `project_trusted` types (train.trusted_types) beside mlpipe's. Without
    `dest` the files go to a temporary folder that is removed once the model is in memory (every service
    start used to leave one behind); the returned path then no longer exists."""
    try:
        resolved = resolve_run(client, ref)
    except Refused as exc:  # a version naming a run that is not there is refused like a bad file
        raise ModelRefused(str(exc)) from None
    run_id = resolved.run_id
    recorded = tag.read(resolved.run.data.tags, tag.MODEL_SHA256)
    if not recorded:
        raise ModelRefused(
            f"{ref}: run {run_id} records no {tag.MODEL_SHA256} (rule: only mlpipe models are loaded)"
        )
    if expected_sha256 is not None and recorded != expected_sha256:
        raise ModelRefused(
            f"{ref}: run {run_id} now records sha256 {recorded}, its judged record names {expected_sha256} "
            "(rule: only the bytes that were judged are loaded)"
        )
    args = (recorded, allow_version_mismatch, project_trusted)
    if dest is None:
        with tempfile.TemporaryDirectory(prefix="mlpipe-model-") as tmp:
            return load_model_dir(download_model(client, resolved, Path(tmp)), *args), resolved
    return load_model_dir(download_model(client, resolved, dest), *args), resolved


def logged_model_uri(resolved: Resolved) -> str:
    """The logged model behind a resolved reference (pure): a version's source, else the model URI its run
    recorded."""
    if resolved.source is not None:
        return resolved.source
    return tag.read(resolved.run.data.tags, tag.MODEL_URI, "") or ""


def download_model(client, resolved: Resolved, dest: Path) -> Path:
    """The model directory (model file + manifest) of a resolved reference under `dest`: the logged model's
    own files. Runs logged before the logged model held the trained file are read from the run's copy."""
    import mlflow.artifacts

    uri = logged_model_uri(resolved)
    if uri.startswith("models:/m-"):
        location = client.get_logged_model(uri.removeprefix("models:/")).artifact_location
        model_dir = Path(
            mlflow.artifacts.download_artifacts(
                artifact_uri=location, dst_path=str(dest), tracking_uri=client.tracking_uri
            )
        )
        if (model_dir / MANIFEST_FILE).exists():
            return model_dir
    return Path(client.download_artifacts(resolved.run_id, MODEL_ARTIFACTS, str(dest)))


def load_profile(client, run) -> dict:
    """The training profile `run` (an MLflow Run, as read by resolve_run) logged, checked against the md5 its
    record holds for the validate stage's output (the service builds its request rules from it: a changed
    file is refused naming file, expected and found)."""
    import hashlib
    import json

    run_id = run.info.run_id
    # the md5 of the stage output it is a copy of (tag.DVC_OUTPUT_TAGS): a tag, no download at start-up
    expected = tag.read(run.data.tags, tag.PROFILE_MD5)
    with tempfile.TemporaryDirectory(prefix="mlpipe-profile-") as tmp:
        path = Path(client.download_artifacts(run_id, PROFILE_ARTIFACT, tmp))
        raw = path.read_bytes()
    found = hashlib.md5(raw).hexdigest()
    if expected and found != expected:
        raise ModelRefused(
            f"run {run_id} artifact {PROFILE_ARTIFACT}: md5 {found} found, {expected} recorded at training "
            "(rule: only the profile that was trained is used)"
        )
    return json.loads(raw)


def verify_registered(
    client, ref: str, action: str, key: SigningKey, project_trusted: list[str] | tuple[str, ...] = ()
) -> None:
    """Check `ref`'s judged record and load it through the safe loader into a temporary folder (removed), as
    the service would; a refusal becomes PromotionRefused naming the version and why (the alias does not
    move)."""
    from mlpipe.errors import PromotionRefused
    from mlpipe.registry.judged import judged_ref

    with tempfile.TemporaryDirectory(prefix="mlpipe-verify-") as tmp:
        try:
            pinned, sha256 = judged_ref(client, ref, key)
            load_registered(
                client, pinned, dest=Path(tmp), project_trusted=project_trusted, expected_sha256=sha256
            )
        except ModelRefused as exc:
            raise PromotionRefused(f"{action}: {ref} fails its checks, not made champion ({exc})") from None


def rollback_champion(
    root: Path,
    client,
    name: str,
    reason: str,
    wait_s: float = REGISTRY_WAIT_S,
    project_trusted: list[str] | tuple[str, ...] = (),
) -> tuple[str, str]:
    """`mlpipe rollback`: under model `name`'s registry lock, champion <- previous once that exact version
    carries a judged record and loads and verifies as the service would load it. Returns (demoted,
    champion)."""
    key = read_signing_key(root)

    def verify(version: str) -> None:
        verify_registered(client, f"models:/{name}/{version}", "rollback", key, project_trusted)

    with registry_lock(root, name, "`mlpipe rollback` verifying the previous champion", wait_s):
        return rollback(client, name, reason, verify)
