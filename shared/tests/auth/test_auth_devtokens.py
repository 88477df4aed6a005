"""The clientele-token CLI, run in-process."""

from __future__ import annotations

import json
import stat
from pathlib import Path

import jwt
import pytest
from clientele_auth_testkit import clear_auth_env
from clientele_shared.auth import AuthSettings, Role, TokenVerifier
from clientele_shared.auth.devtokens import main


@pytest.fixture(autouse=True)
def _clean_auth_env(monkeypatch: pytest.MonkeyPatch) -> None:
    clear_auth_env(monkeypatch)


def keygen(directory: Path, *extra: str) -> int:
    return main(["keygen", "--dir", str(directory), *extra])


def test_keygen_writes_keys_with_private_permissions(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    keys = tmp_path / "keys"
    assert keygen(keys) == 0
    private = keys / "private.pem"
    assert stat.S_IMODE(private.stat().st_mode) == 0o600
    assert private.read_bytes().startswith(b"-----BEGIN PRIVATE KEY-----")
    assert (keys / "public.pem").read_bytes().startswith(b"-----BEGIN PUBLIC KEY-----")
    jwks = json.loads((keys / "jwks.json").read_text())
    (jwk,) = jwks["keys"]
    assert (jwk["kty"], jwk["alg"], jwk["use"]) == ("RSA", "RS256", "sig")
    assert jwk["kid"] in capsys.readouterr().out
    assert "d" not in jwk  # no private member is ever published


def test_keygen_is_idempotent_unless_forced(tmp_path: Path) -> None:
    assert keygen(tmp_path) == 0
    original = (tmp_path / "private.pem").read_bytes()
    assert keygen(tmp_path) == 0
    assert (tmp_path / "private.pem").read_bytes() == original
    assert keygen(tmp_path, "--force") == 0
    assert (tmp_path / "private.pem").read_bytes() != original
    assert stat.S_IMODE((tmp_path / "private.pem").stat().st_mode) == 0o600


async def test_keygen_then_mint_round_trip(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert keygen(tmp_path) == 0
    capsys.readouterr()
    status = main(
        [
            "mint",
            "--key",
            str(tmp_path / "private.pem"),
            "--sub",
            "alice",
            "--roles",
            "sales,head_of_sales",
            "--directions",
            "north, south",
            "--ttl",
            "120",
        ]
    )
    assert status == 0
    token = capsys.readouterr().out.strip()
    verifier = TokenVerifier(AuthSettings(public_key_file=tmp_path / "public.pem"))
    principal = await verifier.verify(token)
    assert principal.subject == "alice"
    assert principal.roles == {"sales", "head_of_sales"}
    assert principal.directions == {"north", "south"}
    assert principal.kind == "user"
    claims = jwt.decode(token, options={"verify_signature": False})
    assert claims["exp"] - claims["iat"] == 120
    kid = json.loads((tmp_path / "jwks.json").read_text())["keys"][0]["kid"]
    assert jwt.get_unverified_header(token)["kid"] == kid


async def test_mint_service_token(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    keygen(tmp_path)
    capsys.readouterr()
    assert main(["mint", "--key", str(tmp_path / "private.pem"), "--service", "notifier"]) == 0
    token = capsys.readouterr().out.strip()
    verifier = TokenVerifier(AuthSettings(public_key_file=tmp_path / "public.pem"))
    principal = await verifier.verify(token)
    assert principal.kind == "service"
    assert principal.subject == "service:notifier"
    assert principal.has_role(Role.SERVICE)


async def test_mint_a_confined_connector_token(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    keygen(tmp_path)
    capsys.readouterr()
    key = str(tmp_path / "private.pem")
    args = ["mint", "--key", key, "--service", "web-forms", "--directions", "north", "--confined"]
    assert main(args) == 0
    verifier = TokenVerifier(AuthSettings(public_key_file=tmp_path / "public.pem"))
    principal = await verifier.verify(capsys.readouterr().out.strip())
    assert principal.confined
    assert principal.roles == frozenset()
    assert principal.directions == frozenset({"north"})
    assert main(["mint", "--key", key, "--service", "web-forms", "--confined"]) == 2
    assert main([*args, "--roles", "sales"]) == 2


def test_mint_audience_and_issuer_are_honoured(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    keygen(tmp_path)
    capsys.readouterr()
    main(
        [
            "mint",
            "--key",
            str(tmp_path / "private.pem"),
            "--sub",
            "bob",
            "--issuer",
            "idp",
            "--audience",
            "crm",
        ]
    )
    claims = jwt.decode(capsys.readouterr().out.strip(), options={"verify_signature": False})
    assert (claims["iss"], claims["aud"]) == ("idp", "crm")


@pytest.mark.parametrize("key_name", ["private.pem", "public.pem"])
def test_jwks_command_prints_the_public_set(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], key_name: str
) -> None:
    keygen(tmp_path)
    capsys.readouterr()
    assert main(["jwks", "--key", str(tmp_path / key_name)]) == 0
    printed = json.loads(capsys.readouterr().out)
    assert printed == json.loads((tmp_path / "jwks.json").read_text())


def test_mint_errors(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["mint", "--key", str(tmp_path / "missing.pem"), "--sub", "x"]) == 1
    assert "missing.pem" in capsys.readouterr().err
    keygen(tmp_path)
    assert main(["mint", "--key", str(tmp_path / "private.pem")]) == 2
    with pytest.raises(SystemExit):
        main(["mint", "--key", str(tmp_path / "private.pem"), "--sub", "x", "--ttl", "0"])
