"""TLS clusters: certificates, an encrypted cluster that computes, and refused strangers."""

from __future__ import annotations

import asyncio
import shutil
import ssl
import stat
import subprocess

import dask
import numpy as np
import pytest

import tilevision as tv
from tilevision._image import make_image
from tilevision.cli import main
from tilevision.cluster import make_certificates, security, session

RECIPE = tv.Recipe(["intensity", "gradient"], tile=16)


@pytest.fixture(scope="module")
def certs(tmp_path_factory):
    return make_certificates(tmp_path_factory.mktemp("tls") / "certs")


def image():
    data = np.random.default_rng(3).random((48, 64)).astype(np.float32)
    return make_image(data, ("y", "x"), spacing=(0.5, 0.5), units="millimeter")


def test_certificate_folder_is_private_and_the_chain_verifies(certs):
    assert stat.S_IMODE(certs.stat().st_mode) == 0o700
    for key in ("ca-key.pem", "node-key.pem"):
        assert stat.S_IMODE((certs / key).stat().st_mode) == 0o600
    openssl = shutil.which("openssl")
    if openssl is None:
        pytest.skip("openssl is not installed: cannot verify the chain independently")
    verified = subprocess.run(
        [openssl, "verify", "-CAfile", str(certs / "ca.pem"), str(certs / "node.pem")],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert verified.returncode == 0, verified.stderr
    assert "node.pem: OK" in verified.stdout
    text = subprocess.run(
        [openssl, "x509", "-in", str(certs / "node.pem"), "-noout", "-text"],
        capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip
    assert "DNS:localhost" in text
    assert "IP Address:127.0.0.1" in text


def test_existing_certificates_are_kept_unless_overwrite(certs, tmp_path):
    before = (certs / "ca.pem").read_bytes()
    with pytest.raises(FileExistsError, match="overwrite=True"):
        make_certificates(certs)
    assert (certs / "ca.pem").read_bytes() == before
    other = make_certificates(tmp_path / "c")
    first = (other / "ca.pem").read_bytes()
    make_certificates(other, overwrite=True)
    assert (other / "ca.pem").read_bytes() != first
    with pytest.raises(ValueError, match="days must be at least 1"):
        make_certificates(tmp_path / "d", days=0)


def test_security_needs_the_files(tmp_path):
    with pytest.raises(FileNotFoundError, match="tilevision cluster certs"):
        security(tmp_path)
    with pytest.raises(TypeError, match="security must be a certificate folder"):
        tv.cluster.client(security=42)


def test_tls_cluster_computes_what_threads_compute(certs):
    with session(n_workers=1, threads_per_worker=2, security=certs) as client:
        assert client.scheduler.address.startswith("tls://")
        assert client.security.require_encryption
        result = tv.analyze(image(), recipe=RECIPE, client=client, verbose=False)
    with dask.config.set(scheduler="threads"):
        expected = tv.analyze(image(), recipe=RECIPE, client=False, verbose=False)
    np.testing.assert_allclose(result["descriptor"].values, expected["descriptor"].values)


async def _identity(address, **connection_args):
    """Connect like a client and ask the scheduler who it is."""
    from distributed.comm import connect

    comm = await connect(address, timeout=5, **connection_args)
    try:
        await comm.write({"op": "identity"})
        return await comm.read()
    finally:
        await comm.close()


def test_only_holders_of_the_authoritys_certificates_get_in(certs, tmp_path):
    from distributed.comm.core import CommClosedError

    stranger = security(make_certificates(tmp_path / "stranger"))
    trusting_only = ssl.create_default_context(cafile=str(certs / "ca.pem"))
    trusting_only.check_hostname = False  # trusts the authority, shows no certificate
    with session(n_workers=1, threads_per_worker=1, security=certs) as client:
        address = client.scheduler.address
        assert address.startswith("tls://")
        friend = asyncio.run(_identity(address, **security(certs).get_connection_args("client")))
        assert friend["type"] == "Scheduler"
        # plain TCP to the TLS port: the scheduler drops it
        with pytest.raises((CommClosedError, OSError)):
            asyncio.run(_identity(address.replace("tls://", "tcp://")))
        # a certificate of another authority, or none at all: the handshake fails
        with pytest.raises((CommClosedError, OSError)):
            asyncio.run(_identity(address, **stranger.get_connection_args("client")))
        with pytest.raises((CommClosedError, OSError)):
            asyncio.run(_identity(address, ssl_context=trusting_only))
        # and the cluster still works for its own client afterwards
        assert client.submit(sum, [1, 2]).result() == 3


def test_cli_certs_and_analyze_over_tls(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("TILEVISION_CACHE", str(tmp_path / "cache"))
    folder = tmp_path / "certs"
    assert main(["cluster", "certs", str(folder), "--host", "node7", "--days", "2"]) == 0
    assert f"--tls {folder}" in capsys.readouterr().out
    assert main(["cluster", "certs", str(folder)]) == 1  # kept: they are in use
    assert "overwrite" in capsys.readouterr().err
    source = tmp_path / "img.npy"
    np.save(source, np.random.default_rng(0).random((32, 32)).astype(np.float32))
    assert main(["analyze", str(source), "--tls", str(folder), "--json"]) == 0
    assert '"valid_tiles": 1' in capsys.readouterr().out
    assert tv.cluster.current_client() is None  # the TLS cluster was closed
