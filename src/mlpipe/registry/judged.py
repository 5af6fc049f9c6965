"""mlpipe's own record that a registered version was judged: the gate passed it, or `mlpipe promote`
promoted it. The record is a model-version tag, `<verdict>:<HMAC-SHA256>` over (model sha256, registered
model name, version, verdict) under the project's signing key (runtime.signing), which never goes to the
registry: whoever can only write to the registry can copy, move or invent tags, but cannot make a record that
verifies for other bytes, another version or another model. The service loads a version only once its record
verifies, before a byte of the model is downloaded or deserialized."""

from __future__ import annotations

import hashlib
import hmac
import json

from mlpipe.errors import NotJudged
from mlpipe.registry import tags as tag
from mlpipe.registry.refs import MODEL_REF
from mlpipe.runtime.signing import SigningKey

PASSED, PROMOTED = "passed", "promoted"  # the gate passed it; `mlpipe promote` promoted it
VERDICTS = (PASSED, PROMOTED)
_DOMAIN = "mlpipe-judged-v1"  # a MAC made for another purpose with the same key never verifies as a record


def record_mac(secret: bytes, sha256: str, name: str, version: str, verdict: str) -> str:
    """HMAC-SHA256 (hex) of one judged record; the fields are JSON-encoded, so none can run into the next."""
    message = json.dumps([_DOMAIN, sha256, name, str(version), verdict]).encode()
    return hmac.new(secret, message, hashlib.sha256).hexdigest()


def record_value(secret: bytes, sha256: str, name: str, version: str, verdict: str) -> str:
    """The tag value of a judged record."""
    return f"{verdict}:{record_mac(secret, sha256, name, version, verdict)}"


def record_problem(
    value: str | None, key: SigningKey, sha256: str | None, name: str, version: str
) -> str | None:
    """Why `value` is not a valid judged record of `sha256` as version `version` of `name`, or None (pure)."""
    if not value:
        return f"no judged record ({tag.JUDGED})"
    if key.secret is None:
        return f"no signing key at {key.where} to verify its judged record"
    if not sha256:
        return f"its run records no {tag.MODEL_SHA256}"
    verdict, _, mac = value.partition(":")
    if verdict not in VERDICTS:
        return f"judged record names verdict {verdict!r}, not one of {', '.join(VERDICTS)}"
    if not hmac.compare_digest(mac, record_mac(key.secret, sha256, name, version, verdict)):
        return (
            f"judged record does not verify under the key at {key.where} (forged, or signed with another key)"
        )
    return None


def write_judged(client, key: SigningKey, name: str, version: str, sha256: str, verdict: str) -> None:
    """Tag version `version` of `name` with its judged record; the caller writes it before moving `champion`
    (the service never sees the alias on a version whose record is not there yet)."""
    if key.secret is None:
        raise NotJudged(f"{name} version {version}: no signing key at {key.where} to sign its judged record")
    client.set_model_version_tag(
        name, version, tag.JUDGED, record_value(key.secret, sha256, name, version, verdict)
    )


def judged_ref(client, ref: str, key: SigningKey) -> tuple[str, str]:
    """(models:/NAME/VERSION, its model sha256) for `ref` (a version or an alias, resolved once: the version
    checked is the version loaded) once its judged record verifies; NotJudged in one line otherwise."""
    from mlflow.exceptions import MlflowException

    m = MODEL_REF.match(ref)
    if not m:
        raise NotJudged(
            f"{ref}: not a registered version (rule: the service serves a version of a registered model "
            "that this project's gate passed or `mlpipe promote` promoted)"
        )
    try:
        if m["version"]:
            mv = client.get_model_version(m["name"], m["version"])
        else:
            mv = client.get_model_version_by_alias(m["name"], m["alias"])
        sha256 = tag.read(client.get_run(mv.run_id).data.tags, tag.MODEL_SHA256)
    except MlflowException as exc:
        raise NotJudged(f"{ref}: not found in the tracking store ({exc.message.splitlines()[0]})") from None
    name, version = m["name"], str(mv.version)
    problem = record_problem((mv.tags or {}).get(tag.JUDGED), key, sha256, name, version)
    if problem:
        raise NotJudged(
            f"{name} version {version}: {problem} (rule: only versions this project's gate passed or "
            f"`mlpipe promote` promoted are served; to serve it: mlpipe promote models:/{name}/{version} "
            "--reason ...)"
        )
    return f"models:/{name}/{version}", sha256


def unjudged_champion(client, name: str, key: SigningKey) -> str | None:
    """One line when `champion` of `name` names a version the service would refuse (no record that verifies:
    judged before records existed, or its record forged), with how to sign it; None when it would be served
    or there is no champion."""
    from mlflow.exceptions import MlflowException

    from mlpipe.registry.aliases import CHAMPION

    try:
        judged_ref(client, f"models:/{name}@{CHAMPION}", key)
    except NotJudged as exc:
        return f"note: champion is not servable: {exc}"
    except MlflowException:
        return None  # no champion yet
    return None
