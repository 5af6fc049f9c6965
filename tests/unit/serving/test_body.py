"""Request bodies: JSON within a depth limit, strings that are valid text, refusals that name the limit
or the field (pure helpers of serving.body and serving.guard)."""

from __future__ import annotations

import json

import pytest

from mlpipe.serving.body import (
    MAX_DEPTH,
    BodyRefused,
    escaped,
    lone_surrogates,
    nesting_depth,
    parse_json,
    path_text,
)
from mlpipe.serving.guard import declared_length, too_large_rule


def refusal(body: bytes) -> BodyRefused:
    with pytest.raises(BodyRefused) as caught:
        parse_json(body)
    return caught.value


def test_a_plain_body_parses_as_json_would():
    body = {"records": [{"carrier": "UA", "distance": 2475, "temp": None}], "x": [1.5, "é", "😀"]}
    assert parse_json(json.dumps(body).encode()) == body
    assert parse_json(json.dumps(body, ensure_ascii=False).encode()) == body
    assert parse_json(b'{"a": "\\ud83d\\ude00"}') == {"a": "😀"}  # an escaped surrogate pair is fine
    assert parse_json(b'{"hour": NaN}')["hour"] != 0  # NaN reaches the rules, which name it (422)


@pytest.mark.parametrize(
    "body",
    [
        b"[" * 1000 + b"]" * 1000,
        b'{"a": ' * 1000 + b"1" + b"}" * 1000,
        b'{"records": [{"hour": ' + b"[" * 500 + b"]" * 500 + b"}]}",
    ],
)
def test_deep_nesting_is_a_400_naming_the_limit(body):
    refused = refusal(body)
    assert refused.status == 400 and refused.kind == "too_deep"
    assert refused.detail == [
        {"field": "<body>", "rule": f"JSON nested more than {MAX_DEPTH} levels deep (limit: {MAX_DEPTH})"}
    ]


def test_nesting_at_the_limit_is_accepted():
    assert parse_json(b"[" * MAX_DEPTH + b"]" * MAX_DEPTH) is not None
    assert nesting_depth(1, 5) == 0 and nesting_depth([], 5) == 1 and nesting_depth({"a": [[1]]}, 5) == 3
    assert nesting_depth([[[[[[[[]]]]]]]], 3) == 4, "counted no further than limit + 1"


def test_lone_surrogates_are_a_422_naming_each_field():
    refused = refusal(b'{"records": [{"carrier": "UA", "origin": "\\ud800x"}, {"\\udfff": 1}]}')
    assert refused.status == 422 and refused.kind == "not_text"
    assert refused.detail == [
        {"field": "records[0].origin", "rule": "not valid UTF-8 text (a lone surrogate): \\ud800x"},
        {"field": "records[1].\\udfff", "rule": "field name is not valid UTF-8 text (a lone surrogate)"},
    ]
    assert refusal(b'{"request_id": "\\udc80", "labels": [1]}').detail[0]["field"] == "request_id"
    json.dumps(refused.detail).encode("utf-8")  # the 422 itself is valid text


def test_bodies_that_are_not_text_or_not_json_are_a_400():
    for body in (b"\xff\xfe\x00", b"\xed\xa0\x80", b'{"a": "\xed\xa0\x80"}', b"{not json", b"", b"1" * 5000):
        refused = refusal(body)
        assert refused.status == 400 and refused.kind == "invalid_json" and "invalid JSON" in str(refused)


def test_paths_and_escapes_read_as_the_field():
    assert path_text(("records", 0, "island")) == "records[0].island" and path_text(()) == "<body>"
    assert path_text((3, "a")) == "[3].a"
    assert escaped("a\udc80b") == "a\\udc80b" and len(escaped("x" * 500)) == 80
    assert lone_surrogates(["ok", {"k": ["\ud800"]}]) == [
        ("[1].k[0]", "not valid UTF-8 text (a lone surrogate): \\ud800")
    ]
    assert len(lone_surrogates(["\ud800"] * 100)) == 20


def test_content_length_and_the_413_rule():
    assert declared_length([(b"host", b"x"), (b"content-length", b"12")]) == 12
    assert declared_length([(b"transfer-encoding", b"chunked")]) is None
    assert declared_length([(b"content-length", b"zz")]) is None
    assert too_large_rule(2000, 1000) == "payload of 2000 bytes is over the limit of 1000"
    assert too_large_rule(None, 1000) == "payload of more than 1000 bytes is over the limit of 1000"
