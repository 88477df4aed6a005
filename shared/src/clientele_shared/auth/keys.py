"""Key handling for JWT signing and verification: PEM loading, JWK export, RFC 7638 ``kid``.

All cryptography is done by ``cryptography`` and PyJWT; this module only converts formats.
"""

from __future__ import annotations

import base64
import hashlib
import json
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed448, ed25519, rsa
from jwt.algorithms import ECAlgorithm, OKPAlgorithm, RSAAlgorithm

_PUBLIC_TYPES = (
    rsa.RSAPublicKey,
    ec.EllipticCurvePublicKey,
    ed25519.Ed25519PublicKey,
    ed448.Ed448PublicKey,
)
_PRIVATE_TYPES = (
    rsa.RSAPrivateKey,
    ec.EllipticCurvePrivateKey,
    ed25519.Ed25519PrivateKey,
    ed448.Ed448PrivateKey,
)
PublicKey = (
    rsa.RSAPublicKey | ec.EllipticCurvePublicKey | ed25519.Ed25519PublicKey | ed448.Ed448PublicKey
)
"""The public key types Clientele can verify with (RSA, EC, Ed25519, Ed448)."""
PrivateKey = (
    rsa.RSAPrivateKey
    | ec.EllipticCurvePrivateKey
    | ed25519.Ed25519PrivateKey
    | ed448.Ed448PrivateKey
)
"""The private key types Clientele can sign with."""

_EC_ALGORITHMS: dict[str, tuple[str, ...]] = {
    "secp256r1": ("ES256",),
    "secp256k1": ("ES256K",),
    "secp384r1": ("ES384",),
    "secp521r1": ("ES512", "ES521"),
}
_RSA_ALGORITHMS = ("RS256", "RS384", "RS512", "PS256", "PS384", "PS512")
# RFC 7638 §3.2: the members that define each key type, in the canonical order.
_THUMBPRINT_MEMBERS: dict[str, tuple[str, ...]] = {
    "RSA": ("e", "kty", "n"),
    "EC": ("crv", "kty", "x", "y"),
    "OKP": ("crv", "kty", "x"),
}


class KeyFileError(ValueError):
    """A key file is missing, unreadable or of an unsupported type."""


def _read(source: Path | bytes | str) -> bytes:
    if isinstance(source, bytes):
        return source
    if isinstance(source, str) and source.lstrip().startswith("-----BEGIN"):
        return source.encode()
    path = Path(source)
    try:
        return path.read_bytes()
    except OSError as exc:
        raise KeyFileError(f"cannot read key file {path}: {exc.strerror}") from exc


def load_public_key(source: Path | bytes | str) -> PublicKey:
    """Load a PEM public key (``-----BEGIN PUBLIC KEY-----``) from a file path or PEM text."""
    data = _read(source)
    try:
        key = serialization.load_pem_public_key(data)
    except ValueError as exc:
        raise KeyFileError("not a PEM public key") from exc
    if not isinstance(key, _PUBLIC_TYPES):
        raise KeyFileError(f"unsupported public key type {type(key).__name__}")
    return key


def load_private_key(source: Path | bytes | str) -> PrivateKey:
    """Load an unencrypted PEM private key from a file path or PEM text."""
    data = _read(source)
    try:
        key = serialization.load_pem_private_key(data, password=None)
    except (ValueError, TypeError) as exc:
        raise KeyFileError("not an unencrypted PEM private key") from exc
    if not isinstance(key, _PRIVATE_TYPES):
        raise KeyFileError(f"unsupported private key type {type(key).__name__}")
    return key


def generate_rsa_key(bits: int = 2048) -> rsa.RSAPrivateKey:
    """A fresh RSA private key (public exponent 65537)."""
    return rsa.generate_private_key(public_exponent=65537, key_size=bits)


def private_key_pem(key: PrivateKey) -> bytes:
    """PKCS#8 PEM, unencrypted (protect the file with permissions)."""
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def public_key_pem(key: PublicKey) -> bytes:
    """SubjectPublicKeyInfo PEM."""
    return key.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )


def key_algorithms(key: PublicKey | PrivateKey) -> tuple[str, ...]:
    """The JWS algorithms that can be used with ``key``, preferred one first."""
    if isinstance(key, rsa.RSAPublicKey | rsa.RSAPrivateKey):
        return _RSA_ALGORITHMS
    if isinstance(key, ec.EllipticCurvePublicKey | ec.EllipticCurvePrivateKey):
        return _EC_ALGORITHMS.get(key.curve.name, ())
    return ("EdDSA",)


def default_algorithm(key: PublicKey | PrivateKey) -> str:
    """RS256 for RSA, ES256/ES384/ES512 by curve for EC, EdDSA for Ed25519/Ed448."""
    algorithms = key_algorithms(key)
    if not algorithms:
        raise KeyFileError("unsupported elliptic curve")
    return algorithms[0]


def compatible_algorithms(key: PublicKey, allowed: Iterable[str]) -> list[str]:
    """The ``allowed`` algorithms that match the type (and curve) of ``key``."""
    usable = set(key_algorithms(key))
    return [alg for alg in allowed if alg in usable]


def _public(key: PublicKey | PrivateKey) -> PublicKey:
    if isinstance(key, _PRIVATE_TYPES):
        return key.public_key()
    return key


def _bare_jwk(key: PublicKey) -> dict[str, Any]:
    jwk: dict[str, Any]
    if isinstance(key, rsa.RSAPublicKey):
        jwk = RSAAlgorithm.to_jwk(key, as_dict=True)
    elif isinstance(key, ec.EllipticCurvePublicKey):
        jwk = ECAlgorithm.to_jwk(key, as_dict=True)
    else:
        jwk = OKPAlgorithm.to_jwk(key, as_dict=True)
    members = _THUMBPRINT_MEMBERS[jwk["kty"]]
    return {name: jwk[name] for name in members}


def jwk_thumbprint(key: PublicKey | PrivateKey) -> str:
    """RFC 7638 SHA-256 thumbprint of the public key, base64url without padding."""
    canonical = json.dumps(_bare_jwk(_public(key)), sort_keys=True, separators=(",", ":"))
    digest = hashlib.sha256(canonical.encode("utf-8")).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


def public_jwk(key: PublicKey | PrivateKey, *, algorithm: str | None = None) -> dict[str, Any]:
    """The public JWK of ``key`` with ``kid`` (RFC 7638 thumbprint), ``use`` and ``alg``."""
    public = _public(key)
    jwk = _bare_jwk(public)
    jwk.update(
        kid=jwk_thumbprint(public),
        use="sig",
        alg=algorithm or default_algorithm(public),
    )
    return jwk


def jwks_document(*keys: PublicKey | PrivateKey) -> dict[str, Any]:
    """A JWK Set (``{"keys": [...]}``) publishing the public half of ``keys``."""
    return {"keys": [public_jwk(key) for key in keys]}
