"""Real self-signed certificates for the TLS tests, made at test time by the openssl command.

The command rather than the ``cryptography`` package: the worker's venv does not have it, and
openssl is on every machine that runs the tests. Each certificate names 127.0.0.1 (the tests'
only address) as its subject, so it is one a client could verify if it trusted it.
"""

from __future__ import annotations

from dataclasses import dataclass
import hashlib
from pathlib import Path
import ssl
import subprocess

LOOPBACK = "127.0.0.1"


@dataclass(frozen=True)
class Certificate:
    """A certificate and its private key, as PEM files."""

    cert: Path
    key: Path

    @property
    def fingerprint(self) -> str:
        """SHA-256 of the certificate as ``openssl x509 -fingerprint -sha256`` prints it."""
        der = ssl.PEM_cert_to_DER_cert(self.cert.read_text())
        return ":".join(f"{byte:02X}" for byte in hashlib.sha256(der).digest())

    def trusting_context(self) -> ssl.SSLContext:
        """A client context that trusts this certificate (as if a CA had signed it)."""
        return ssl.create_default_context(cafile=str(self.cert))

    def worker_options(self) -> tuple[str, ...]:
        """The worker's command-line options that serve with it."""
        return ("--tls-cert", str(self.cert), "--tls-key", str(self.key))


def make_certificate(folder: Path, name: str = "worker", *, host: str | None = None) -> Certificate:
    """A new self-signed certificate for 127.0.0.1, or for the DNS name ``host`` (a P-256 key;
    valid for a day)."""
    folder.mkdir(parents=True, exist_ok=True)
    subject, alt_name = (host, f"DNS:{host}") if host else (LOOPBACK, f"IP:{LOOPBACK}")
    made = Certificate(cert=folder / f"{name}.crt", key=folder / f"{name}.key")
    subprocess.run(
        [
            "openssl",
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-nodes",
            "-days",
            "1",
            "-subj",
            f"/CN={subject}",
            "-addext",
            f"subjectAltName={alt_name}",
            "-keyout",
            str(made.key),
            "-out",
            str(made.cert),
        ],
        check=True,
        capture_output=True,
        timeout=30,
    )
    return made
