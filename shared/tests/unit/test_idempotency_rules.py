"""The pure parts of Idempotency-Key handling: key validation, fingerprints, what is kept."""

import pytest
from clientele_shared.http.idempotency import (
    Fingerprint,
    InvalidKeyError,
    parse_key,
    storable,
    storage_key,
)


@pytest.mark.parametrize(
    ("raw", "key"),
    [
        (b"8e03978e-40d5-43e8-bc93-6894a57f9324", "8e03978e-40d5-43e8-bc93-6894a57f9324"),
        (b'"8e03978e-40d5"', "8e03978e-40d5"),
        (b"  spaced ", "spaced"),
        (b"x" * 255, "x" * 255),
        (b"a b~!", "a b~!"),
    ],
)
def test_a_usable_key_is_taken_as_sent(raw: bytes, key: str) -> None:
    assert parse_key([raw]) == key


@pytest.mark.parametrize(
    "values",
    [[b""], [b'""'], [b"x" * 256], [b"caf\xc3\xa9"], [b"tab\there"], [b"a", b"b"]],
    ids=["empty", "empty-quoted", "too-long", "not-ascii", "control", "twice"],
)
def test_an_unusable_key_is_refused(values: list[bytes]) -> None:
    with pytest.raises(InvalidKeyError) as refused:
        parse_key(values)
    assert refused.value.status == 400


def _fingerprint(
    *chunks: bytes,
    content_type: bytes = b"application/json",
    query: bytes = b"",
    if_match: bytes = b"",
) -> str:
    fingerprint = Fingerprint(content_type=content_type, query=query, if_match=if_match)
    for chunk in chunks:
        fingerprint.update(chunk)
    return fingerprint.hexdigest()


def test_the_same_body_has_one_fingerprint_however_it_arrives() -> None:
    body = b'{"legal_name": "Romashka", "inn": "7707083893"}'
    whole = _fingerprint(body)
    assert _fingerprint(body[:7], body[7:30], body[30:]) == whole
    assert _fingerprint(body, content_type=b"Application/JSON") == whole
    assert _fingerprint(body + b" ") != whole
    assert _fingerprint(body, content_type=b"text/plain") != whole
    assert _fingerprint(body, query=b"mode=dry_run") != whole
    assert _fingerprint(body, if_match=b'W/"2"') != whole
    assert _fingerprint() != _fingerprint(b"", content_type=b"")


def _multipart(boundary: bytes, payload: bytes) -> bytes:
    return (
        b"--" + boundary + b"\r\n"
        b'Content-Disposition: form-data; name="file"; filename="orgs.csv"\r\n\r\n'
        + payload
        + b"\r\n--"
        + boundary
        + b"--\r\n"
    )


def test_a_multipart_boundary_does_not_count() -> None:
    """A client draws a new boundary for each request it builds, its retries included."""
    payload = b"inn;name\n7707083893;Romashka\n" * 50

    def of(boundary: bytes, data: bytes, size: int) -> str:
        body = _multipart(boundary, data)
        chunks = [body[i : i + size] for i in range(0, len(body), size)]
        content_type = b'multipart/form-data; boundary="' + boundary + b'"'
        return _fingerprint(*chunks, content_type=content_type)

    first = of(b"a1b2c3d4e5", payload, 7)
    assert of(b"zz99yy88xx77", payload, 3) == first
    assert of(b"a1b2c3d4e5", payload, 10_000) == first
    assert of(b"a1b2c3d4e5", payload + b"1", 7) != first
    unquoted = _multipart(b"q1w2e3", payload)
    assert _fingerprint(unquoted, content_type=b"multipart/form-data; boundary=q1w2e3") == first


def test_two_callers_or_two_paths_never_share_a_key() -> None:
    key = storage_key("directory", "user:alice", "POST", "/v1/organizations", "k1")
    assert key.startswith("idempotency:directory:")
    assert key != storage_key("directory", "user:bob", "POST", "/v1/organizations", "k1")
    assert key != storage_key("directory", "user:alice", "POST", "/v1/persons", "k1")
    assert key != storage_key("directory", "user:alice", "PATCH", "/v1/organizations", "k1")
    assert key != storage_key("pipeline", "user:alice", "POST", "/v1/organizations", "k1")
    assert key == storage_key("directory", "user:alice", "POST", "/v1/organizations", "k1")


@pytest.mark.parametrize(
    ("status", "kept"),
    [
        (200, True),
        (201, True),
        (204, True),
        (400, True),
        (422, True),
        (401, False),
        (403, False),
        (404, False),
        (409, False),
        (412, False),
        (429, False),
        (500, False),
        (503, False),
    ],
)
def test_only_answers_a_retry_would_get_again_are_kept(status: int, kept: bool) -> None:
    assert storable(status) is kept
