"""mlpipe's judged record: an HMAC-SHA256 over (model sha256, registered model name, version, verdict) under
the project's key. Anything a registry writer can do alone (copy a record to another version or model, change
the bytes it names, invent a verdict or a MAC) fails to verify; the key file is created once, 0600, and never
replaced."""

from __future__ import annotations

import os
import stat

import pytest

from mlpipe.errors import ConfigError
from mlpipe.registry.judged import PASSED, PROMOTED, record_problem, record_value
from mlpipe.runtime.signing import (
    KEY_ENV,
    SigningKey,
    key_path,
    read_signing_key,
    signing_key_for_writing,
)

KEY = SigningKey(b"k" * 32, "test key")
SHA = "a" * 64


def test_a_record_verifies_for_exactly_what_it_was_made_for():
    value = record_value(KEY.secret, SHA, "flights-late", "3", PASSED)
    assert value.startswith("passed:") and record_problem(value, KEY, SHA, "flights-late", "3") is None
    assert record_problem(record_value(KEY.secret, SHA, "m", "3", PROMOTED), KEY, SHA, "m", "3") is None


@pytest.mark.parametrize(
    ("sha", "name", "version", "why"),
    [
        ("b" * 64, "flights-late", "3", "other bytes"),
        (SHA, "flights-late", "4", "copied to another version"),
        (SHA, "other-model", "3", "copied to another model"),
    ],
)
def test_a_record_copied_or_pointed_at_other_bytes_does_not_verify(sha, name, version, why):
    value = record_value(KEY.secret, SHA, "flights-late", "3", PASSED)
    assert "does not verify" in record_problem(value, KEY, sha, name, version), why


def test_what_a_registry_writer_can_write_alone_is_refused():
    assert record_problem(None, KEY, SHA, "m", "1") == "no judged record (mlpipe.judged)"
    assert "does not verify" in record_problem("passed:" + "0" * 64, KEY, SHA, "m", "1")
    other_key = record_value(b"x" * 32, SHA, "m", "1", PASSED)
    assert "does not verify" in record_problem(other_key, KEY, SHA, "m", "1")
    mac = record_value(KEY.secret, SHA, "m", "1", PASSED).partition(":")[2]
    assert "verdict 'champion'" in record_problem(f"champion:{mac}", KEY, SHA, "m", "1")
    assert "verify" in record_problem(f"promoted:{mac}", KEY, SHA, "m", "1"), "the verdict is signed too"
    value = record_value(KEY.secret, SHA, "m", "1", PASSED)
    assert "no signing key at nowhere" in record_problem(value, SigningKey(None, "nowhere"), SHA, "m", "1")


def test_the_key_file_is_created_once_owner_only_and_readers_never_create_it(tmp_path):
    assert read_signing_key(tmp_path, environ={}).secret is None
    assert not key_path(tmp_path).exists(), "a reader never makes a key"
    made = signing_key_for_writing(tmp_path, environ={})
    assert len(made.secret) == 32 and made.where == str(key_path(tmp_path))
    assert stat.S_IMODE(os.stat(key_path(tmp_path)).st_mode) == 0o600
    assert signing_key_for_writing(tmp_path, environ={}).secret == made.secret, "never replaced"
    assert list(key_path(tmp_path).parent.iterdir()) == [key_path(tmp_path)], "no temporary file left"
    os.chmod(key_path(tmp_path), 0o644)
    with pytest.raises(ConfigError, match=r"mode 644 \(rule: the signing key is the owner's alone"):
        read_signing_key(tmp_path, environ={})


def test_a_deployment_key_comes_from_the_environment_and_must_be_long(tmp_path):
    found = read_signing_key(tmp_path, environ={KEY_ENV: "s" * 64})
    assert found.secret == b"s" * 64 and found.where == f"${KEY_ENV}"
    assert signing_key_for_writing(tmp_path, environ={KEY_ENV: "s" * 64}).secret == b"s" * 64
    assert not key_path(tmp_path).exists(), "with the variable set, no key file is made"
    with pytest.raises(ConfigError, match=f"{KEY_ENV}: 8 characters"):
        read_signing_key(tmp_path, environ={KEY_ENV: "tooshort"})
