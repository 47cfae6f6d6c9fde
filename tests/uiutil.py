"""A headless Chromium for the web UI tests (Debian's ``chromium`` and ``chromium-driver``;
nothing is downloaded), and a world of users, projects, runs and versions to browse."""

from __future__ import annotations

import json
import os
import re
import struct
import subprocess
import sys
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import requests
from selenium import webdriver
from selenium.common.exceptions import WebDriverException
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.remote.webelement import WebElement
from selenium.webdriver.support import expected_conditions
from selenium.webdriver.support.ui import WebDriverWait

from .conftest import _base_env as base_env
from .serverutil import ServerProcess, free_port
from .util import ARTFS, need, run_artfs, start_service, write_tree

CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"
COOKIE = "artfs_session"
SCREENSHOTS = Path(__file__).resolve().parent.parent / "artifacts" / "screenshots"

# What a user can put markup into (names of artifacts cannot hold it): each must show as text.
XSS = {
    "description": "<script>document.title='pwned'</script><img src=x onerror=alert(1)>",
    "key": "<b>bold-key</b>",
    "value": "<script>alert(2)</script>",
    "file": "<img src=x onerror=alert(3)>.txt",
    "config_key": "<i>lr</i>",
    "config_value": "<svg onload=alert(4)>",
}

_LOG = """
import json, sys, artfs
root, xss = sys.argv[1], json.loads(sys.argv[2])
where = {"entity": "cv", "project": "pipeline"}
with artfs.init(**where, name="ingest", job_type="ingest") as ingest:
    raw = artfs.Artifact("raw", type="dataset", description=xss["description"],
                         metadata={xss["key"]: xss["value"], "rows": 2})
    raw.add_dir(root)
    raw.add(artfs.Table(["city", "temp"], [["Oslo", 3], ["Rome", 18]]), "weather")
    for part, rows in enumerate(([["Lima", 19]], [["Pune", 31], ["Riga", 7]])):
        raw.add(artfs.Table(["city", "temp"], rows), f"parts/part-{part}")
    raw.add(artfs.PartitionedTable("parts"), "all")
    ingest.log_artifact(raw)
    vocab = artfs.Artifact("vocab", type="dataset")
    with vocab.new_file("words.txt") as f:
        f.write("cold\\nwarm\\n")
    ingest.log_artifact(vocab)
config = {xss["config_key"]: xss["config_value"], "seed": 7}
with artfs.init(**where, name="prep", job_type="prep", config=config) as prep:
    prep.use_artifact("raw:latest")
    clean = artfs.Artifact("clean", type="dataset")
    with clean.new_file("clean.csv") as f:
        f.write("city,temp\\nOslo,3\\n")
    prep.log_artifact(clean)
with artfs.init(**where, name="train", job_type="train") as train:
    train.use_artifact("clean:latest")
    train.use_artifact("vocab:latest")
    model = artfs.Artifact("model", type="model", metadata={"layers": 3})
    with model.new_file("weights.bin") as f:
        f.write("weights")
    train.log_artifact(model)
with artfs.init(**where, name="evaluate", job_type="eval") as evaluate:
    evaluate.use_artifact("model:latest")
    evaluate.summary["acc"] = 0.9
sweep = artfs.sweep({"method": "grid", "metric": {"name": "acc", "goal": "maximize"},
                     "parameters": {"lr": {"values": [0.1, 0.01, 0.001]}}}, **where)
def trial():
    run = artfs.init()
    run.summary["acc"] = {0.1: 0.5, 0.01: 0.9, 0.001: 0.7}[run.config["lr"]]
artfs.agent(sweep, trial, count=3)
print(json.dumps({"ingest": ingest.id, "prep": prep.id, "train": train.id,
                  "evaluate": evaluate.id, "sweep": sweep.split("/")[-1]}))
"""


def png(width: int = 8, height: int = 6) -> bytes:
    """A small red PNG image."""

    def chunk(tag: bytes, data: bytes) -> bytes:
        body = tag + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    rows = b"".join(b"\x00" + b"\xd0\x30\x30" * width for _ in range(height))
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(rows))
        + chunk(b"IEND", b"")
    )


RAW_FILES = {
    "table.csv": b"city,temp\nOslo,3\nRome,18\n",
    "pixel.png": png(),
    "fake.png": b"<html><script>alert(5)</script></html>",
    "page.html": b"<html><body><script>alert(6)</script>hello</body></html>",
    "notes/readme.txt": b"read me first\n",
    XSS["file"]: b"a file with markup in its name\n",
}


@dataclass
class World:
    """A server where team ``cv`` (member alice; bob is outside) has a public project
    ``pipeline`` (runs ingest -> raw -> prep -> clean -> train -> model -> evaluate, ingest
    -> vocab -> train, and a sweep) and a private project ``secret``."""

    server: ServerProcess
    tmp: Path
    alice: str
    bob: str
    runs: dict[str, str]

    def url(self, path: str) -> str:
        return f"{self.server.url}/ui{path}"

    def version_url(self, name: str, part: str = "") -> str:
        artifact, _, alias = name.partition(":")
        url = self.url(f"/projects/cv/pipeline/artifacts/{artifact}/{alias or 'v0'}")
        return f"{url}/{part}" if part else url

    def env(self, key: str) -> dict[str, str]:
        return {**base_env(self.tmp), **self.server.user_env(key)}

    def show(self, name: str, key: str | None = None) -> dict[str, object]:
        """``artfs show --json`` as a user (alice by default) sees it."""
        out = run_artfs("show", f"cv/pipeline/{name}", "--json", env=self.env(key or self.alice))
        return json.loads(out.stdout)

    def session(self, key: str) -> requests.Session:
        """Plain HTTP with a user's session cookie (as a forged request would carry it)."""
        session = requests.Session()
        session.cookies.set(COOKIE, key)
        return session


def build_world(server: ServerProcess, tmp: Path) -> World:
    admin = server.admin()
    admin.create_team("cv")
    alice = server.add_user("alice", {"cv": "member"})
    bob = server.add_user("bob")
    admin.create_project("cv", "pipeline", "public")
    admin.create_project("cv", "secret", "private")
    world = World(server, tmp, alice, bob, {})
    root = write_tree(tmp / "raw", RAW_FILES)
    logged = subprocess.run(
        [sys.executable, "-c", _LOG, str(root), json.dumps(XSS)],
        env={**world.env(alice), "ARTFS_ENTITY": "cv"},  # log_artifact uses the default entity
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert logged.returncode == 0, logged.stderr
    world.runs = json.loads(logged.stdout.strip().splitlines()[-1])
    hidden = write_tree(tmp / "hidden", {"plans.txt": b"the secret plans\n"})
    run_artfs("put", hidden, "-n", "cv/secret/plans", env=world.env(alice))
    return world


def start_browser() -> Iterator[WebDriver]:
    need(
        os.access(CHROMIUM, os.X_OK) and os.access(CHROMEDRIVER, os.X_OK),
        "Debian's chromium and chromium-driver (scripts/setup.sh --test installs them)",
    )
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for arg in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage"):
        options.add_argument(arg)
    options.add_argument("--window-size=1280,900")
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    driver.set_page_load_timeout(30)
    try:
        yield driver
    finally:
        driver.quit()


def wait(driver: WebDriver, css: str) -> WebElement:
    return WebDriverWait(driver, 15).until(
        expected_conditions.presence_of_element_located((By.CSS_SELECTOR, css))
    )


def click(driver: WebDriver, element: WebElement) -> None:
    """Click something that loads another page, and wait until it has."""
    page = driver.find_element(By.TAG_NAME, "html")
    element.click()
    WebDriverWait(driver, 15).until(lambda _: _left(page))


def _left(page: WebElement) -> bool:
    """Whether ``page`` is no longer the document (``staleness_of``, also when chromedriver
    says so mid-navigation as "Node ... does not belong to the document")."""
    try:
        page.is_enabled()
    except WebDriverException:
        return True
    return False


def heading(driver: WebDriver) -> str:
    return driver.find_element(By.TAG_NAME, "h1").text


def log_in(driver: WebDriver, world: World, key: str) -> None:
    driver.get(world.url("/login"))
    driver.delete_all_cookies()
    driver.get(world.url("/login"))
    driver.find_element(By.ID, "api_key").send_keys(key)
    click(driver, driver.find_element(By.ID, "login"))


def csrf_of(html: str) -> str:
    match = re.search(r'name="csrf" value="([0-9a-f]{64})"', html)
    assert match, "the page has no form with a CSRF token"
    return match.group(1)


@contextmanager
def serve_local_ui(env: dict[str, str]) -> Iterator[str]:
    """``artfs ui`` on the embedded store of ``env``; yields its URL (no trailing slash)."""
    port = free_port()
    url = f"http://127.0.0.1:{port}/ui"
    proc = start_service([ARTFS, "ui", "--port", str(port)], url + "/", env)
    try:
        yield url
    finally:
        proc.terminate()
        proc.wait(timeout=15)
