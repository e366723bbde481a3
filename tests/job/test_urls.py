"""URL inputs and outputs on one machine (docs/rules.md §2.10), against real servers on
loopback that the tests start: an HTTP server (http.server in a thread), and moto's
standalone S3 server (a separate process, as a real endpoint would be).

A URL input is read as a stream through fsspec, spooled once like a compressed file, for
a plain run and a nightly one; outputs go to URLs too, uploaded whole on success.
"""

from __future__ import annotations

import contextlib
import functools
import gzip
import http.server
import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import zstandard
from accounts_job.state.folder import StateDir
from support.helpers import console_script, csv_text, new_state

DAY = csv_text("deposit,1,1,10", "deposit,2,2,5", "withdrawal,1,3,20", "bogus,1,4,1")
NEXT = csv_text("dispute,1,1", "deposit,3,5,1.5")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def http_folder(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    """A folder served over HTTP on loopback: (base URL, folder)."""
    pytest.importorskip("aiohttp")  # fsspec's HTTP file system
    folder = tmp_path / "www"
    folder.mkdir()
    handler = functools.partial(_QuietHandler, directory=str(folder))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", folder
    finally:
        server.shutdown()
        server.server_close()


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args: object) -> None:
        pass


def job(*args: object, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [str(console_script()), *map(str, args)],
        stdin=subprocess.DEVNULL,
        capture_output=True,
        timeout=300,
        env=env,
    )


def test_https_style_urls_plain_and_compressed_as_one_stream(http_folder, tmp_path):
    base, folder = http_folder
    (folder / "day.csv").write_text(DAY)
    (folder / "next.csv.gz").write_bytes(gzip.compress(NEXT.encode()))
    done = job(
        "run", f"{base}/day.csv", f"{base}/next.csv.gz", "--rejects", tmp_path / "r.csv", "-q"
    )
    assert done.returncode == 0, done.stderr
    local = tmp_path / "day.csv"
    local.write_text(DAY)
    (tmp_path / "next.csv").write_text(NEXT)
    assert done.stdout == job("run", local, tmp_path / "next.csv", "-q").stdout
    rejects = (tmp_path / "r.csv").read_text().splitlines()
    assert rejects[1].startswith(f'"{base}/day.csv",4,"insufficient_funds"')


def test_a_missing_url_is_66_before_any_output(http_folder, tmp_path):
    base, _ = http_folder
    done = job("run", f"{base}/nope.csv", "--out", tmp_path / "a.csv")
    assert done.returncode == 66, done.stderr
    assert b"input not found" in done.stderr
    assert not (tmp_path / "a.csv").exists()


def test_a_file_url_reads_as_the_file(tmp_path):
    (tmp_path / "day.csv").write_text(DAY)
    done = job("run", f"file://{tmp_path}/day.csv", "-q")
    assert done.returncode == 0, done.stderr
    assert done.stdout == job("run", tmp_path / "day.csv", "-q").stdout


# --- S3 -------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def s3_endpoint(tmp_path_factory) -> Iterator[dict[str, str]]:
    """moto's standalone S3 server on loopback, and the environment that points the job
    (s3fs through botocore) at it."""
    pytest.importorskip("s3fs")
    pytest.importorskip("moto.server")
    port = free_port()
    log = tmp_path_factory.mktemp("moto") / "moto.log"
    with open(log, "wb") as out:
        server = subprocess.Popen(
            [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        deadline = time.monotonic() + 60
        while True:
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 1):
                break
            if time.monotonic() > deadline or server.poll() is not None:
                pytest.fail(f"moto's server did not start: {log.read_text()}")
            time.sleep(0.1)
        url = f"http://127.0.0.1:{port}"
        env = {
            **os.environ,
            "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing",
            "AWS_DEFAULT_REGION": "us-east-1",
            "AWS_ENDPOINT_URL": url,  # botocore
            "FSSPEC_S3_ENDPOINT_URL": url,  # s3fs, through fsspec's configuration
        }
        subprocess.run(
            [sys.executable, "-c", MAKE_BUCKET],
            env=env,
            check=True,
            capture_output=True,
            timeout=120,
        )
        yield env
    finally:
        server.terminate()
        server.wait(timeout=30)


MAKE_BUCKET = "import s3fs; s3fs.S3FileSystem().mkdir('bank')\n"
PUT = (
    "import sys, s3fs\n"
    "fs = s3fs.S3FileSystem()\n"
    "fs.pipe_file(sys.argv[1], open(sys.argv[2], 'rb').read())\n"
)
GET = "import sys, s3fs\nsys.stdout.buffer.write(s3fs.S3FileSystem().cat_file(sys.argv[1]))\n"


def put(env: dict[str, str], key: str, local: Path) -> None:
    subprocess.run([sys.executable, "-c", PUT, key, str(local)], env=env, check=True, timeout=120)


def get(env: dict[str, str], key: str) -> bytes:
    return subprocess.run(
        [sys.executable, "-c", GET, key], env=env, check=True, capture_output=True, timeout=120
    ).stdout


def test_s3_inputs_and_outputs_on_one_machine(s3_endpoint, tmp_path):
    env = s3_endpoint
    (tmp_path / "day.csv.zst").write_bytes(zstandard.ZstdCompressor().compress(DAY.encode()))
    put(env, "bank/in/day.csv.zst", tmp_path / "day.csv.zst")
    done = job(
        "run",
        "s3://bank/in/day.csv.zst",
        "--out",
        "s3://bank/out/accounts.csv",
        "--rejects",
        "s3://bank/out/rejects.csv",
        "-q",
        env=env,
    )
    assert done.returncode == 0, done.stderr
    (tmp_path / "day.csv").write_text(DAY)
    assert get(env, "bank/out/accounts.csv") == job("run", tmp_path / "day.csv", "-q").stdout
    assert b"insufficient_funds" in get(env, "bank/out/rejects.csv")


def test_a_nightly_run_from_s3_applies_each_file_once(s3_endpoint, tmp_path):
    env = s3_endpoint
    (tmp_path / "day.csv").write_text(DAY)
    (tmp_path / "day.csv.gz").write_bytes(gzip.compress(DAY.encode()))
    (tmp_path / "next.csv").write_text(NEXT)
    put(env, "bank/nightly/day.csv.gz", tmp_path / "day.csv.gz")
    put(env, "bank/nightly/next.csv", tmp_path / "next.csv")
    state = new_state(tmp_path / "state")
    # The first day arrived as a local file; the bucket holds it again, gzipped.
    assert job("run", tmp_path / "day.csv", "--state", state, "-q", env=env).returncode == 0
    done = job(
        "run", "s3://bank/nightly/day.csv.gz", "s3://bank/nightly/next.csv", "--state", state,
        env=env,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert b"day.csv.gz not applied: already applied (as day.csv" in done.stderr
    assert [a.name for a in StateDir(state).manifest().applied] == ["day.csv", "next.csv"]
    assert b"1,0.0000,10.0000,10.0000,false" in done.stdout
