"""TLS for Dask clusters: make a certificate folder, and the ``Security`` that uses it.

A folder made by :func:`make_certificates` holds a private certificate authority
(``ca.pem``, its key ``ca-key.pem`` kept only to sign more certificates) and one
certificate with its key (``node.pem``, ``node-key.pem``) signed by it, used by the
scheduler, the workers and the clients alike. With :func:`security` every connection is
encrypted and both ends must show a certificate signed by that authority, so a process
without the folder cannot join or submit work. Keep the folder private (mode 0700);
on a batch system put it on the shared filesystem the jobs see.
"""

from __future__ import annotations

import datetime
import ipaddress
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

__all__ = ["CERT_FILES", "make_certificates", "security"]

#: the files of a certificate folder
CERT_FILES = ("ca.pem", "ca-key.pem", "node.pem", "node-key.pem")


def _key() -> Any:
    from cryptography.hazmat.primitives.asymmetric import ec

    return ec.generate_private_key(ec.SECP256R1())


def _pem_key(key: Any) -> bytes:
    from cryptography.hazmat.primitives import serialization

    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def _write_private(path: Path, data: bytes) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(data)


def _san(hosts: Sequence[str]) -> Any:
    from cryptography import x509

    names: list[Any] = []
    for host in hosts:
        try:
            names.append(x509.IPAddress(ipaddress.ip_address(host)))
        except ValueError:
            names.append(x509.DNSName(host))
    return x509.SubjectAlternativeName(names)


def _ca_usage() -> Any:
    from cryptography import x509

    flags = dict.fromkeys(
        ("content_commitment", "key_encipherment", "data_encipherment", "key_agreement",
         "encipher_only", "decipher_only"),
        False,
    )  # fmt: skip
    return x509.KeyUsage(digital_signature=True, key_cert_sign=True, crl_sign=True, **flags)


def make_certificates(
    folder: str | os.PathLike[str],
    *,
    hosts: Sequence[str] = ("localhost", "127.0.0.1"),
    days: int = 365,
    overwrite: bool = False,
) -> Path:
    """Write a private certificate authority and a node certificate for a TLS cluster.

    Parameters
    ----------
    folder : path
        Created with mode 0700; receives :data:`CERT_FILES` (keys with mode 0600).
    hosts : sequence of str, optional
        Host names and IP addresses written in the node certificate (Dask checks the
        authority, not the names, but other tools may).
    days : int, optional
        Validity of the certificates.
    overwrite : bool, optional
        Replace the certificates of a folder that has them.

    Returns
    -------
    pathlib.Path
        The folder, for :func:`security`.

    Examples
    --------
    >>> import tempfile
    >>> folder = make_certificates(tempfile.mkdtemp() + "/certs")
    >>> sorted(p.name for p in folder.iterdir())
    ['ca-key.pem', 'ca.pem', 'node-key.pem', 'node.pem']
    """
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.x509.oid import NameOID

    folder = Path(folder)
    existing = [name for name in CERT_FILES if (folder / name).exists()]
    if existing and not overwrite:
        raise FileExistsError(
            f"{folder} already holds certificates ({', '.join(existing)}); pass "
            "overwrite=True (--overwrite) to replace them, which locks out every process "
            "that uses the old ones."
        )
    if days < 1:
        raise ValueError(f"days must be at least 1, not {days}.")
    folder.mkdir(mode=0o700, parents=True, exist_ok=True)
    now = datetime.datetime.now(datetime.timezone.utc)
    start, end = now - datetime.timedelta(minutes=5), now + datetime.timedelta(days=days)

    ca_key = _key()
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "tilevision cluster CA")])
    ca = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(start)
        .not_valid_after(end)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(_ca_usage(), critical=True)
        .sign(ca_key, hashes.SHA256())
    )
    node_key = _key()
    node = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "tilevision node")]))
        .issuer_name(ca_name)
        .public_key(node_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(start)
        .not_valid_after(end)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(_san(hosts), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    pem = serialization.Encoding.PEM
    _write_private(folder / "ca-key.pem", _pem_key(ca_key))
    _write_private(folder / "node-key.pem", _pem_key(node_key))
    (folder / "ca.pem").write_bytes(ca.public_bytes(pem))
    (folder / "node.pem").write_bytes(node.public_bytes(pem))
    return folder


def security(folder: str | os.PathLike[str]) -> Any:
    """A ``distributed.Security`` that requires TLS with the certificates of ``folder``.

    Parameters
    ----------
    folder : path
        Made by :func:`make_certificates` (or holding ``ca.pem``, ``node.pem`` and
        ``node-key.pem`` of your own authority).

    Returns
    -------
    distributed.Security
        ``require_encryption=True``; the same certificate for scheduler, workers and
        clients.

    Examples
    --------
    >>> import tempfile
    >>> sec = security(make_certificates(tempfile.mkdtemp() + "/certs"))
    >>> sec.require_encryption, sec.tls_ca_file.endswith("ca.pem")
    (True, True)
    """
    from distributed import Security

    folder = Path(folder)
    missing = [n for n in ("ca.pem", "node.pem", "node-key.pem") if not (folder / n).is_file()]
    if missing:
        raise FileNotFoundError(
            f"{folder} lacks {', '.join(missing)}: make the certificates first with "
            f"`tilevision cluster certs {folder}` (or tilevision.cluster.make_certificates)."
        )
    cert, key, ca = (str((folder / n).resolve()) for n in ("node.pem", "node-key.pem", "ca.pem"))
    return Security(
        require_encryption=True,
        tls_ca_file=ca,
        tls_client_cert=cert,
        tls_client_key=key,
        tls_scheduler_cert=cert,
        tls_scheduler_key=key,
        tls_worker_cert=cert,
        tls_worker_key=key,
    )
