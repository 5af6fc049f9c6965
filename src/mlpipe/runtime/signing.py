"""The project's signing key: the secret mlpipe's judged records (registry.judged) are HMACs under. It lives
with the project or the deployment, never in the registry: `MLPIPE_SIGNING_KEY` (a deployment whose service
runs away from the project's files; the gate's machine and the service's share it), else
`.mlpipe/signing.key` in the project (git-ignored, mode 0600, created by the first gate or `mlpipe promote`
with 32 random bytes). Readers never create it: a service without the key refuses every version."""

from __future__ import annotations

import os
import secrets
import stat
from dataclasses import dataclass
from pathlib import Path

from mlpipe.errors import ConfigError

KEY_ENV = "MLPIPE_SIGNING_KEY"
KEY_BYTES = 32
MIN_ENV_CHARS = 32  # e.g. `python -c "import secrets; print(secrets.token_hex(32))"`


@dataclass(frozen=True)
class SigningKey:
    """The secret (None when there is none yet) and where it was looked for, for the refusal that says so."""

    secret: bytes | None
    where: str


def key_path(root: Path) -> Path:
    return root / ".mlpipe" / "signing.key"


def read_signing_key(root: Path, environ: dict[str, str] | None = None) -> SigningKey:
    """The key from the environment, else the project's key file, else SigningKey(None, where); ConfigError
    for a key too short or a key file others may read or write (anyone who can read it can forge)."""
    env = os.environ if environ is None else environ
    if value := env.get(KEY_ENV):
        if len(value) < MIN_ENV_CHARS:
            raise ConfigError(
                f"{KEY_ENV}: {len(value)} characters "
                f"(rule: at least {MIN_ENV_CHARS}, e.g. secrets.token_hex(32))"
            )
        return SigningKey(value.encode(), f"${KEY_ENV}")
    path = key_path(root)
    try:
        mode = path.stat().st_mode
    except FileNotFoundError:
        return SigningKey(None, f"{path} (nor ${KEY_ENV})")
    if mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise ConfigError(
            f"{path}: mode {stat.S_IMODE(mode):o} (rule: the signing key is the owner's alone: chmod 600)"
        )
    secret = path.read_bytes()
    if len(secret) < KEY_BYTES:
        raise ConfigError(f"{path}: {len(secret)} bytes (rule: a signing key holds {KEY_BYTES} random bytes)")
    return SigningKey(secret, str(path))


def signing_key_for_writing(root: Path, environ: dict[str, str] | None = None) -> SigningKey:
    """read_signing_key, creating the project's key file first when neither it nor the variable exists
    (mode 0600 from the start; two runs creating it at once agree on the first one linked into place)."""
    found = read_signing_key(root, environ)
    if found.secret is not None:
        return found
    path = key_path(root)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".signing.key.{os.getpid()}.{secrets.token_hex(4)}")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(secrets.token_bytes(KEY_BYTES))
            fh.flush()
            os.fsync(fh.fileno())
        try:
            os.link(tmp, path)  # never replaces a key another run created meanwhile
        except FileExistsError:
            pass
    finally:
        tmp.unlink(missing_ok=True)
    return read_signing_key(root, environ)
