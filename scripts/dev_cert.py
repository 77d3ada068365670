#!/usr/bin/env python3
"""A self-signed TLS certificate for a development ejabberd (docker-compose.yml).

Writes one PEM file holding the private key and the certificate, as ejabberd's
``certfiles`` wants them, for the given names: by default ``localhost``, the
virtual host, and ``upload.localhost``, its HTTP File Upload service (no
wildcard: TLS libraries refuse one right under a one-label name such as
``localhost``). Clients that require TLS (Gajim, Conversations) then connect
over STARTTLS once they accept the certificate, which no authority signed.
The file is kept while it is valid for more than 30 days and covers the names
asked for, so that restarting the stack does not make clients accept a new
certificate each time; otherwise it is written again.

    python scripts/dev_cert.py --out /certs/ejabberd.pem [--name localhost --name ...]

The key is readable by everyone (mode 0644), so that ejabberd's unprivileged
user in its own container can read it: a development key, NEVER a deployment's.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import sys
import tempfile
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

VALID_DAYS = 365
RENEW_BEFORE = dt.timedelta(days=30)
DEFAULT_NAMES = ("localhost", "upload.localhost")


def still_good(path: Path, names: list[str], now: dt.datetime) -> bool:
    """The file holds a certificate for all ``names``, valid for a while yet."""
    try:
        cert = x509.load_pem_x509_certificate(path.read_bytes())
    except (OSError, ValueError):
        return False
    try:
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return False
    covered = set(san.get_values_for_type(x509.DNSName))
    return set(names) <= covered and cert.not_valid_after_utc - now > RENEW_BEFORE


def make(names: list[str], now: dt.datetime) -> bytes:
    """A new key and a certificate signed by itself, as one PEM."""
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "orgchat development"),
            x509.NameAttribute(NameOID.COMMON_NAME, names[0]),
        ]
    )
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=VALID_DAYS))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(n) for n in names]), False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), True)
        .add_extension(x509.ExtendedKeyUsage([x509.OID_SERVER_AUTH, x509.OID_CLIENT_AUTH]), False)
        .sign(key, hashes.SHA256())
    )
    pem_key = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    return pem_key + cert.public_bytes(serialization.Encoding.PEM)


def write(path: Path, data: bytes) -> None:
    """Replace ``path`` at once: ejabberd never reads half a file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".cert-")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="dev_cert", description=__doc__.split("\n")[0])
    parser.add_argument("--out", type=Path, required=True, help="the PEM file (key + certificate)")
    parser.add_argument(
        "--name",
        action="append",
        help="a DNS name the certificate is for (repeat; default: localhost, upload.localhost)",
    )
    args = parser.parse_args(argv)
    names: list[str] = args.name or list(DEFAULT_NAMES)
    now = dt.datetime.now(dt.UTC)
    if still_good(args.out, names, now):
        print(f"dev_cert: {args.out} kept (valid for {', '.join(names)})", file=sys.stderr)
        return 0
    write(args.out, make(names, now))
    print(f"dev_cert: {args.out} written for {', '.join(names)}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
