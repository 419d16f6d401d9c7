"""OME-Zarr on an S3-compatible server: open, info and analyze equal the local store.

A ``moto`` S3 server runs as a separate process on 127.0.0.1 for the module. The
real CT and a generated texture slide are ingested locally, uploaded with s3fs,
and every result read through ``s3://`` is compared with the same call on the local
store. Credentials and the endpoint reach s3fs only through the environment
(``AWS_ACCESS_KEY_ID``, ``AWS_SECRET_ACCESS_KEY``, ``AWS_ENDPOINT_URL``); the library
is given nothing. The server checks signatures only inside ``enforced_auth()``
(moto's IAM mode), where the credentials of an IAM user made for the test pass and
wrong ones are refused.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request

import numpy as np
import pytest
import xarray as xr

import tilevision as tv
from tilevision.testing import raise_if_dask_computes

pytest.importorskip("s3fs", reason="s3fs is not installed (pip install 'tilevision[s3]')")
pytest.importorskip(
    "moto.server", reason="moto's server is not installed (pip install 'moto[server]')"
)
pytest.importorskip("flask", reason="moto's server needs flask (pip install 'moto[server]')")
boto3 = pytest.importorskip("boto3", reason="boto3 is needed to create the test's IAM user")

import fsspec  # noqa: E402
import s3fs  # noqa: E402

BUCKET = "tilevision-test"
RECIPE = tv.Recipe(
    {"intensity": {"hu": True, "percentiles": [10, 50, 90], "bins": 16}},
    tile=16,
    mask="HU > -500",
    min_foreground=0.25,
)
SLIDE_RECIPE = tv.Recipe(["intensity"], tile=64)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _post(url: str, body: bytes) -> None:
    request = urllib.request.Request(
        url, data=body, method="POST", headers={"Content-Type": "text/plain"}
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        response.read()


def _start_moto(log_path) -> tuple[subprocess.Popen, str]:
    port = _free_port()
    endpoint = f"http://127.0.0.1:{port}"
    log = open(log_path, "wb")  # noqa: SIM115 (closed with the server)
    proc = subprocess.Popen(
        [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,  # its own process group, killed as a whole in teardown
    )
    proc.log = log  # type: ignore[attr-defined]
    deadline = time.monotonic() + 30
    while True:
        try:
            with urllib.request.urlopen(f"{endpoint}/moto-api/", timeout=1):
                return proc, endpoint
        except OSError:
            if proc.poll() is not None or time.monotonic() > deadline:
                _stop(proc)
                pytest.fail(f"moto server did not start:\n{log_path.read_text()[-2000:]}")
            time.sleep(0.1)


def _stop(proc: subprocess.Popen) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGTERM)
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)
    proc.log.close()  # type: ignore[attr-defined]


def _iam_user(endpoint: str) -> dict[str, str]:
    """An IAM user allowed s3:*, and its access key (moto checks it under enforced_auth)."""
    iam = boto3.client(
        "iam",
        endpoint_url=endpoint,
        region_name="us-east-1",
        aws_access_key_id="setup",
        aws_secret_access_key="setup",
    )
    iam.create_user(UserName="tilevision")
    policy = {
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Allow", "Action": "s3:*", "Resource": "*"}],
    }
    iam.put_user_policy(UserName="tilevision", PolicyName="s3", PolicyDocument=json.dumps(policy))
    key = iam.create_access_key(UserName="tilevision")["AccessKey"]
    iam.close()
    return {
        "AWS_ACCESS_KEY_ID": key["AccessKeyId"],
        "AWS_SECRET_ACCESS_KEY": key["SecretAccessKey"],
    }


def _fresh_filesystems() -> None:
    """fsspec caches filesystems (and their credentials) per process: close and forget them.

    zarr's filesystems are asynchronous, which s3fs does not close when they are
    collected (aiohttp then warns "Unclosed client session"): close them on zarr's
    event loop, where they were opened.
    """
    from zarr.core.sync import sync

    for fs in list(s3fs.S3FileSystem._cache.values()):
        if fs.asynchronous and getattr(fs, "_s3creator", None) is not None:
            sync(fs._s3creator.__aexit__(None, None, None))
    s3fs.S3FileSystem.clear_instance_cache()


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    """The moto server, with its endpoint and an IAM user's keys in the environment."""
    proc, endpoint = _start_moto(tmp_path_factory.mktemp("moto") / "moto.log")
    try:
        with pytest.MonkeyPatch.context() as mp:
            for name in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_MAX_ATTEMPTS"):
                mp.delenv(name, raising=False)
            empty = tmp_path_factory.mktemp("aws")
            mp.setenv("AWS_CONFIG_FILE", str(empty / "config"))
            mp.setenv("AWS_SHARED_CREDENTIALS_FILE", str(empty / "credentials"))
            mp.setenv("AWS_DEFAULT_REGION", "us-east-1")
            mp.setenv("AWS_ENDPOINT_URL", endpoint)
            for name, value in _iam_user(endpoint).items():
                mp.setenv(name, value)
            _fresh_filesystems()
            yield endpoint
    finally:
        _fresh_filesystems()
        _stop(proc)


@contextlib.contextmanager
def enforced_auth(endpoint: str):
    """Make the server check signatures and IAM permissions (moto's default is not to)."""
    _post(f"{endpoint}/moto-api/reset-auth", b"0")
    _fresh_filesystems()
    try:
        yield
    finally:
        _post(f"{endpoint}/moto-api/reset-auth", b"inf")
        _fresh_filesystems()


@pytest.fixture(scope="module")
def stores(server, tmp_path_factory):
    """Local OME-Zarr stores and their s3:// copies: name -> (local path, URL)."""
    root = tmp_path_factory.mktemp("local")
    ct = tv.ingest(
        tv.datasets.data_path("ct-organs/example_ct.nii.gz"), root / "ct.zarr", chunks=48
    )
    slide = tv.ingest(
        tv.datasets.texture_slide((300, 420), region_size=96, chunks=128),
        root / "slide.zarr",
        chunks=128,
    )
    fs = s3fs.S3FileSystem()
    fs.mkdir(BUCKET)
    out = {}
    for name, local in (("ct", ct), ("slide", slide)):
        fs.put(str(local), f"{BUCKET}/{local.name}", recursive=True)
        out[name] = (local, f"s3://{BUCKET}/{local.name}")
    fs.put(
        str(tv.datasets.data_path("ct-organs/example_ct.nii.gz")),
        f"{BUCKET}/raw/example_ct.nii.gz",
    )
    return out


def test_the_stores_are_on_the_server_not_on_disk(stores, server):
    # the objects come back through plain HTTP from the server process (boto3, not s3fs)
    s3 = boto3.client("s3", endpoint_url=server)
    keys = {o["Key"] for o in s3.list_objects_v2(Bucket=BUCKET)["Contents"]}
    s3.close()
    assert {"ct.zarr/zarr.json", "ct.zarr/1/zarr.json", "slide.zarr/0/zarr.json"} <= keys


@pytest.mark.parametrize("name", ["ct", "slide"])
@pytest.mark.parametrize("level", [0, 1])
def test_open_equals_local(stores, name, level):
    local_path, url = stores[name]
    local, remote = tv.open(local_path, level=level), tv.open(url, level=level)
    assert remote.attrs.pop("path") == url
    local.attrs.pop("path")
    assert remote.chunks == local.chunks
    assert remote.data.npartitions > 1  # several objects are read, not one
    xr.testing.assert_identical(remote, local)  # values, dims, coords, attrs


def test_ct_geometry_is_in_millimetres(stores):
    _, url = stores["ct"]
    ct, coarse = tv.open(url), tv.open(url, level=1)
    assert ct.dims == ("z", "y", "x")
    assert ct.attrs["units"] == dict.fromkeys("zyx", "millimeter")
    assert ct.attrs["spacing"] == dict.fromkeys("zyx", 3.0)  # the NIfTI's voxel size
    assert coarse.attrs["spacing"] == dict.fromkeys("zyx", 6.0)
    np.testing.assert_allclose(np.diff(ct.x.values), 3.0)
    assert ct.attrs["n_levels"] == coarse.attrs["n_levels"] >= 2


def test_open_and_info_read_no_pixels(stores):
    _, url = stores["ct"]
    with raise_if_dask_computes():
        image = tv.open(url)
        summary = tv.io.info(url)
    assert summary["shape"] == dict(zip(image.dims, image.shape))


def test_info_equals_local(stores):
    local_path, url = stores["slide"]
    remote, local = tv.io.info(url), tv.io.info(local_path)
    assert remote.pop("path") == url
    assert remote.pop("disk_bytes") is None  # unknown without listing the bucket
    local.pop("path"), local.pop("disk_bytes")
    assert remote == local


@pytest.mark.parametrize(("name", "recipe"), [("ct", RECIPE), ("slide", SLIDE_RECIPE)])
def test_analyze_equals_local(stores, name, recipe):
    local_path, url = stores[name]
    remote = tv.analyze(url, recipe=recipe, client=False, verbose=False)
    local = tv.analyze(local_path, recipe=recipe, client=False, verbose=False)
    assert remote.attrs["source"] == url
    assert set(remote.data_vars) == set(local.data_vars)
    assert "descriptor" in remote
    assert int(remote["valid"].sum()) > 0
    for var in remote.data_vars:
        xr.testing.assert_allclose(remote[var], local[var])


def test_missing_store_names_url_and_what_is_there(stores):
    url = f"s3://{BUCKET}/missing.zarr"
    with pytest.raises(
        FileNotFoundError, match=r"no Zarr store at s3://tilevision-test/missing.zarr"
    ) as err:
        tv.open(url)
    assert "['ct.zarr', 'raw', 'slide.zarr']" in str(err.value)
    assert "put(local_store" in str(err.value)


def test_wrong_bucket_names_bucket_and_endpoint(stores, server):
    with pytest.raises(FileNotFoundError, match=r"bucket 'no-such-bucket' does not exist") as err:
        tv.open("s3://no-such-bucket/ct.zarr")
    assert server in str(err.value)
    assert "AWS_ENDPOINT_URL" in str(err.value)


def test_a_file_that_is_not_zarr_says_to_ingest(stores):
    with pytest.raises(FileNotFoundError, match=r"is not a Zarr store.*tilevision.ingest"):
        tv.open(f"s3://{BUCKET}/raw/example_ct.nii.gz")


def test_credentials_from_the_environment_pass_the_server_check(stores, server):
    local_path, url = stores["slide"]
    with enforced_auth(server):
        np.testing.assert_array_equal(tv.open(url).values, tv.open(local_path).values)


@pytest.mark.parametrize(
    ("variable", "value"),
    [("AWS_SECRET_ACCESS_KEY", "not-the-secret"), ("AWS_ACCESS_KEY_ID", "AKIANOSUCHKEY0000000")],
)
def test_wrong_credentials_are_refused_clearly(stores, server, monkeypatch, variable, value):
    _, url = stores["slide"]
    with enforced_auth(server):
        monkeypatch.setenv(variable, value)
        with pytest.raises(
            PermissionError, match=r"access to s3://tilevision-test/slide.zarr was refused"
        ) as err:
            tv.open(url)
    assert "AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY" in str(err.value)


def test_unreachable_endpoint_names_endpoint_variable(stores, monkeypatch):
    closed = f"http://127.0.0.1:{_free_port()}"
    monkeypatch.setenv("AWS_ENDPOINT_URL", closed)
    monkeypatch.setenv("AWS_MAX_ATTEMPTS", "1")
    _fresh_filesystems()
    try:
        with pytest.raises(OSError, match=r"cannot reach s3://tilevision-test/ct.zarr") as err:
            tv.open(stores["ct"][1])
    finally:
        _fresh_filesystems()
    assert closed in str(err.value)
    assert "AWS_ENDPOINT_URL" in str(err.value)


def test_endpoint_from_fsspec_configuration(stores, server, monkeypatch):
    # the documented alternative to AWS_ENDPOINT_URL: FSSPEC_S3_ENDPOINT_URL, which fsspec
    # reads into its configuration when imported (here applied to a copy of that config)
    conf: dict = {}
    fsspec.config.set_conf_env(conf, {"FSSPEC_S3_ENDPOINT_URL": server})
    assert conf == {"s3": {"endpoint_url": server}}
    monkeypatch.delenv("AWS_ENDPOINT_URL")
    monkeypatch.setitem(fsspec.config.conf, "s3", conf["s3"])
    _fresh_filesystems()
    try:
        local_path, url = stores["slide"]
        np.testing.assert_array_equal(tv.open(url).values, tv.open(local_path).values)
    finally:
        _fresh_filesystems()


def test_ingest_to_a_url_says_to_write_locally(stores):
    # ingest writes locally then renames (atomic); S3 has no rename
    with pytest.raises(ValueError, match=r"cannot write to 's3://.*Write locally and copy"):
        tv.ingest(stores["ct"][0], f"s3://{BUCKET}/new.zarr")
    assert not s3fs.S3FileSystem().exists(f"{BUCKET}/new.zarr")


def test_output_of_a_url_is_reused_until_the_store_changes(stores, tmp_path):
    """The source key of a URL lists the store (names, sizes, ETags): a finished output is
    re-used while the store is unchanged, and never taken for the result of a changed one."""
    local_path, _ = stores["slide"]
    fs = s3fs.S3FileSystem()
    url = f"s3://{BUCKET}/changing.zarr"
    fs.put(str(local_path), url.removeprefix("s3://"), recursive=True)
    out = tmp_path / "out"
    first = tv.analyze(url, recipe=SLIDE_RECIPE, client=False, verbose=False, output=out)
    with raise_if_dask_computes():  # unchanged: re-used, nothing computed
        again = tv.analyze(url, recipe=SLIDE_RECIPE, client=False, verbose=False, output=out)
    xr.testing.assert_identical(again.drop_attrs(), first.drop_attrs())
    # one chunk rewritten with other values (same size, another ETag)
    chunk = sorted(p for p in fs.find(url.removeprefix("s3://") + "/0") if "/c/" in p)[0]
    data = bytearray(fs.cat(chunk))
    data[-1] ^= 0xFF
    fs.pipe(chunk, bytes(data))
    _fresh_filesystems()
    with pytest.raises(FileExistsError, match="holds other results"):
        tv.analyze(url, recipe=SLIDE_RECIPE, client=False, verbose=False, output=out)
