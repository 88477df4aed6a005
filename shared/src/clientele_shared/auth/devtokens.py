"""``clientele-token``: development keys and tokens.

    clientele-token keygen --dir .state/keys [--force]
    clientele-token mint --key .state/keys/private.pem --sub alice --roles sales \\
        --directions north,south [--service notifier [--confined]] [--ttl 3600]
    clientele-token jwks --key .state/keys/private.pem

For development and tests only: production tokens come from the identity provider.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Sequence
from pathlib import Path

from .keys import (
    KeyFileError,
    PrivateKey,
    generate_rsa_key,
    jwk_thumbprint,
    jwks_document,
    load_private_key,
    load_public_key,
    private_key_pem,
    public_key_pem,
)
from .tokens import TokenIssuer

PRIVATE_KEY_NAME = "private.pem"
PUBLIC_KEY_NAME = "public.pem"
JWKS_NAME = "jwks.json"


def _csv(value: str) -> list[str]:
    return [item.strip() for item in value.split(",") if item.strip()]


def _write_private(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` readable by the owner only, with no group/world window."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        os.fchmod(fd, 0o600)  # O_CREAT's mode does not apply to an existing file
        os.write(fd, data)
    finally:
        os.close(fd)


def _write_public_files(directory: Path, key: PrivateKey) -> None:
    (directory / PUBLIC_KEY_NAME).write_bytes(public_key_pem(key.public_key()))
    (directory / JWKS_NAME).write_text(json.dumps(jwks_document(key), indent=2) + "\n")


def _keygen(args: argparse.Namespace) -> int:
    directory: Path = args.dir
    directory.mkdir(parents=True, exist_ok=True)
    private_path = directory / PRIVATE_KEY_NAME
    if private_path.exists() and not args.force:
        key = load_private_key(private_path)
        _write_public_files(directory, key)  # derived files: rewriting them is harmless
        print(f"kept existing key {private_path} (kid {jwk_thumbprint(key)}); --force replaces it")
        return 0
    key = generate_rsa_key(args.bits)
    _write_private(private_path, private_key_pem(key))
    _write_public_files(directory, key)
    print(f"wrote {private_path}, {PUBLIC_KEY_NAME} and {JWKS_NAME} (kid {jwk_thumbprint(key)})")
    return 0


def _mint(args: argparse.Namespace) -> int:
    if not args.sub and not args.service:
        print("clientele-token mint: --sub or --service is required", file=sys.stderr)
        return 2
    issuer = TokenIssuer.from_file(args.key, issuer=args.issuer, audience=args.audience)
    roles = _csv(args.roles)
    if args.confined:
        if not args.service or not _csv(args.directions) or roles:
            print(
                "clientele-token mint: --confined needs --service and --directions, no --roles",
                file=sys.stderr,
            )
            return 2
    elif args.service and "service" not in roles:
        roles.append("service")
    token = issuer.mint(
        args.sub or f"service:{args.service}",
        roles=roles,
        directions=_csv(args.directions),
        service=args.service,
        name=args.name,
        email=args.email,
        ttl_seconds=args.ttl,
        confined=args.confined,
    )
    print(token)
    return 0


def _jwks(args: argparse.Namespace) -> int:
    data = args.key.read_bytes()
    key = load_public_key(data) if b"PUBLIC KEY" in data else load_private_key(data)
    print(json.dumps(jwks_document(key), indent=2))
    return 0


def _positive(value: str) -> int:
    number = int(value)
    if number <= 0:
        raise argparse.ArgumentTypeError("must be a positive number of seconds")
    return number


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="clientele-token", description="Development signing keys and tokens for Clientele."
    )
    commands = parser.add_subparsers(dest="command", required=True)

    keygen = commands.add_parser("keygen", help="create an RSA key pair and its JWKS")
    keygen.add_argument("--dir", type=Path, required=True, help="directory for the key files")
    keygen.add_argument("--force", action="store_true", help="replace an existing key")
    keygen.add_argument("--bits", type=int, default=2048, choices=[2048, 3072, 4096])
    keygen.set_defaults(handler=_keygen)

    mint = commands.add_parser("mint", help="print a signed token")
    mint.add_argument("--key", type=Path, required=True, help="PEM private key")
    mint.add_argument("--sub", help="subject (default for --service: service:<name>)")
    mint.add_argument("--roles", default="", help="comma-separated roles")
    mint.add_argument("--directions", default="", help="comma-separated direction codes")
    mint.add_argument("--service", help="mint a service token for this service name")
    mint.add_argument(
        "--confined",
        action="store_true",
        help="a service token confined to --directions, holding no role (ADR 49): a connector's",
    )
    mint.add_argument("--name")
    mint.add_argument("--email")
    mint.add_argument("--ttl", type=_positive, default=3600, help="lifetime in seconds")
    mint.add_argument("--issuer", default="clientele")
    mint.add_argument("--audience", default="clientele")
    mint.set_defaults(handler=_mint)

    jwks = commands.add_parser("jwks", help="print the JWKS of a private or public PEM key")
    jwks.add_argument("--key", type=Path, required=True)
    jwks.set_defaults(handler=_jwks)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``clientele-token`` console script; returns the exit status."""
    args = build_parser().parse_args(argv)
    try:
        status: int = args.handler(args)
    except (KeyFileError, OSError, ValueError) as exc:
        print(f"clientele-token {args.command}: {exc}", file=sys.stderr)
        return 1
    return status


if __name__ == "__main__":
    sys.exit(main())
