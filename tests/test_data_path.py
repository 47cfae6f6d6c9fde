"""The server is off the data path: 256 MiB put and got through a server whose chunks are in a
bucket move less than 1 % of their bytes through the server process.

How it is measured: the server runs alone in its own network namespace, joined to this one by
a veth pair; the bucket (moto) and the client stay outside. Every byte the server sends or
receives, to the client or to the bucket, crosses the veth pair, so the pair's interface
counters (``/sys/class/net/<if>/statistics/{rx,tx}_bytes``, headers included) bound what the
server moved. The same get asked to stream through the server is the control: it moves the
data twice over the pair.
"""

from __future__ import annotations

import os
import random
import shutil
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import boto3
import pytest

from artfs.core.chunking import hash_path

from .conftest import _base_env
from .serverutil import ServerProcess, free_port
from .util import BIN, need, run_artfs, start_service

SIZE = 256 << 20
pytestmark = pytest.mark.slow


@dataclass
class Namespace:
    name: str
    outside: str  # the veth end in this namespace
    outside_ip: str
    inside_ip: str

    def moved(self) -> int:
        """Bytes that crossed the pair so far, both ways."""
        stats = Path(f"/sys/class/net/{self.outside}/statistics")
        return int((stats / "rx_bytes").read_text()) + int((stats / "tx_bytes").read_text())


def _ip(*args: str) -> None:
    subprocess.run(["ip", *args], check=True, capture_output=True)


@pytest.fixture
def netns() -> Iterator[Namespace]:
    need(os.geteuid() == 0 and shutil.which("ip") is not None, "root and iproute2 (ip netns)")
    tag = f"{os.getpid() % 100000}{random.randrange(100)}"
    net = f"10.{random.randrange(200, 250)}.{random.randrange(256)}"
    ns = Namespace(f"artfs-{tag}", f"va{tag}", f"{net}.1", f"{net}.2")
    _ip("netns", "add", ns.name)
    try:
        _ip("link", "add", ns.outside, "type", "veth", "peer", "name", f"vb{tag}")
        _ip("link", "set", f"vb{tag}", "netns", ns.name)
        _ip("addr", "add", f"{ns.outside_ip}/30", "dev", ns.outside)
        _ip("link", "set", ns.outside, "up")
        inside = ("netns", "exec", ns.name, "ip")
        _ip(*inside, "addr", "add", f"{ns.inside_ip}/30", "dev", f"vb{tag}")
        _ip(*inside, "link", "set", f"vb{tag}", "up")
        _ip(*inside, "link", "set", "lo", "up")
        yield ns
    finally:
        _ip("netns", "del", ns.name)  # takes the veth pair with it


def test_put_and_get_move_almost_nothing_through_the_server(netns, tmp_path):
    port = free_port()
    endpoint = f"http://{netns.outside_ip}:{port}"
    moto = start_service(
        [str(BIN / "moto_server"), "-H", netns.outside_ip, "-p", str(port)], endpoint
    )
    aws = {
        "AWS_ENDPOINT_URL": endpoint,
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
    }
    boto3.client(
        "s3",
        endpoint_url=endpoint,
        region_name="us-east-1",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    ).create_bucket(Bucket="offpath")
    server = ServerProcess(
        tmp_path / "server",
        args=("--blobs", "s3://offpath/p"),
        host=netns.inside_ip,
        launcher=("ip", "netns", "exec", netns.name),
        env=aws,
    )
    try:
        server.start()
        base = {k: v for k, v in _base_env(tmp_path).items() if not k.startswith("AWS_")}
        env = {**base, **server.client_env()}
        src = tmp_path / "src" / "big.bin"
        src.parent.mkdir()
        with open(src, "wb") as f:
            for _ in range(SIZE >> 20):
                f.write(os.urandom(1 << 20))

        before = netns.moved()
        run_artfs("put", src.parent, "-n", "proj/big", env=env, timeout=600)
        run_artfs("get", "proj/big", "--root", tmp_path / "out", env=env, timeout=600)
        moved = netns.moved() - before
        assert hash_path(tmp_path / "out" / "big.bin").digest == hash_path(src).digest
        assert moved < SIZE // 100, f"the server moved {moved} bytes for {SIZE} of data"

        # the control: streamed through the server, the same bytes cross the pair twice
        shutil.rmtree(tmp_path / "cache")
        before = netns.moved()
        streamed = {**env, "ARTFS_TRANSFER": "stream"}
        run_artfs("get", "proj/big", "--root", tmp_path / "again", env=streamed, timeout=600)
        assert netns.moved() - before > 2 * SIZE
    finally:
        server.stop()
        moto.kill()
        moto.wait()
