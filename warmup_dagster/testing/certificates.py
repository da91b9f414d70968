"""A self-signed TLS certificate for the test SMTP servers (tests and benchmarks only)."""

from __future__ import annotations

import datetime as dt
import ipaddress
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from warmup_dagster.clock import RealClock


def self_signed_cert(
    directory: Path, hostname: str = "localhost", addresses: tuple[str, ...] = ()
) -> tuple[Path, Path]:
    """Write a self-signed certificate and its key, valid for `hostname`, 127.0.0.1 and
    `addresses`.

    The certificate is its own CA (with the extensions strict X.509 checking wants), so a
    client trusts it by loading the certificate file as a CA file.

    Args:
        directory: Existing folder to write `cert.pem` and `key.pem` into.
        hostname: DNS name for the subject and SAN.
        addresses: More IP addresses for the SAN (a server on a non-loopback interface).

    Returns:
        The certificate and key paths.
    """
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, hostname)])
    # Wall time, whatever the deployment's clock: TLS checks validity against the machine's.
    now = RealClock().now()
    public_key = key.public_key()
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(public_key)
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=2))
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.DNSName(hostname)]
                + [x509.IPAddress(ipaddress.ip_address(a)) for a in ("127.0.0.1", *addresses)]
            ),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(public_key), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(public_key), critical=False
        )
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = directory / "cert.pem", directory / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert_path, key_path
