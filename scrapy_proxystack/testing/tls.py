"""A throw-away self-signed certificate for the HTTPS loopback sites.

One EC key and certificate per world, made in milliseconds with ``cryptography`` (already a
Scrapy dependency), so no certificate file has to live in the repository. The certificate names
every address a site can get (127.0.100.1 to 127.0.100.254), so a client that trusts it as its
CA can even verify the sites; Scrapy does not verify by default.
"""

from __future__ import annotations

import datetime
import ipaddress
import os
import shutil
import ssl
import tempfile
from dataclasses import dataclass, field

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

__all__ = ["SelfSignedCertificate", "make_certificate"]


@dataclass(frozen=True)
class SelfSignedCertificate:
    """PEM certificate and key, and a ready server context built from them."""

    cert_pem: bytes
    key_pem: bytes = field(repr=False)

    def server_context(self) -> ssl.SSLContext:
        """A TLS server context serving this certificate."""
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        # load_cert_chain only reads files: write them to a private directory and delete it
        # at once; the context keeps its own copy.
        directory = tempfile.mkdtemp(prefix="loopback-tls-")
        try:
            cert_file = os.path.join(directory, "cert.pem")
            key_file = os.path.join(directory, "key.pem")
            with open(cert_file, "wb") as f:
                f.write(self.cert_pem)
            with open(os.open(key_file, os.O_WRONLY | os.O_CREAT, 0o600), "wb") as f:
                f.write(self.key_pem)
            context.load_cert_chain(cert_file, key_file)
        finally:
            shutil.rmtree(directory, ignore_errors=True)
        return context


def make_certificate(
    common_name: str = "scrapy-proxystack loopback world",
) -> SelfSignedCertificate:
    """Generate a fresh key and a self-signed certificate valid for the loopback site range."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
    now = datetime.datetime.now(datetime.timezone.utc)
    alt_names: list[x509.GeneralName] = [x509.DNSName("localhost")]
    alt_names.append(x509.IPAddress(ipaddress.IPv4Address("127.0.0.1")))
    alt_names.extend(x509.IPAddress(ipaddress.IPv4Address(f"127.0.100.{k}")) for k in range(1, 255))
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(hours=1))
        .not_valid_after(now + datetime.timedelta(days=7))
        .add_extension(x509.SubjectAlternativeName(alt_names), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .sign(key, hashes.SHA256())
    )
    return SelfSignedCertificate(
        cert_pem=cert.public_bytes(serialization.Encoding.PEM),
        key_pem=key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        ),
    )
