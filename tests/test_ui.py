"""The web UI in a real headless browser against a real ``artfs server`` (issue 13).

One server and one browser serve the whole module (``xdist_group``: one worker runs it).
"""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest
import requests
from selenium.common.exceptions import NoAlertPresentException
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver

from .serverutil import start_server
from .uiutil import (
    COOKIE,
    RAW_FILES,
    SCREENSHOTS,
    XSS,
    World,
    build_world,
    click,
    csrf_of,
    heading,
    log_in,
    serve_local_ui,
    start_browser,
    wait,
)
from .util import run_artfs, write_tree

pytestmark = pytest.mark.xdist_group("ui")


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    tmp = tmp_path_factory.mktemp("ui")
    server = start_server(tmp / "server")
    try:
        yield build_world(server, tmp)
    finally:
        server.stop()


@pytest.fixture(scope="module")
def browser() -> Iterator[WebDriver]:
    yield from start_browser()


def texts(driver: WebDriver, css: str) -> list[str]:
    return [e.text for e in driver.find_elements(By.CSS_SELECTOR, css)]


def test_log_in_and_open_a_version(world, browser):
    log_in(browser, world, world.alice)
    assert heading(browser) == "Projects"
    assert browser.find_element(By.ID, "who").text == "alice"
    cookie = browser.get_cookie(COOKIE)
    assert cookie and cookie["httpOnly"] and cookie["sameSite"] == "Strict"
    assert cookie["path"] == "/" and not cookie["secure"]  # plain http here (TLS: see below)
    rows = texts(browser, "#projects tr")
    assert any("cv/pipeline" in r and "public" in r for r in rows)
    assert any("cv/secret" in r and "private" in r for r in rows)

    click(browser, browser.find_element(By.LINK_TEXT, "cv/pipeline"))
    assert [t.lower() for t in texts(browser, "h3.type")] == ["dataset", "model"]
    click(browser, browser.find_element(By.LINK_TEXT, "raw"))
    versions = browser.find_element(By.ID, "versions").text
    assert "latest" in versions and "ingest" not in versions  # logged by: the run id
    assert world.runs["ingest"] in versions
    click(browser, browser.find_element(By.LINK_TEXT, "v0"))

    assert heading(browser).startswith("raw:v0")
    assert browser.find_element(By.ID, "get-command").text == "artfs get cv/pipeline/raw:v0"
    assert browser.find_element(By.ID, "mount-path").text == "MOUNT/pipeline/raw/v0/"
    metadata = browser.find_element(By.ID, "metadata").text
    assert "rows" in metadata and "2" in metadata
    files = browser.find_element(By.ID, "files").text
    for name in ("table.csv", "pixel.png", "notes/", "readme.txt", "weather.table.json"):
        assert name in files
    assert "1 file, 14 B" in files  # notes/: its count and size

    click(browser, browser.find_element(By.LINK_TEXT, "table.csv"))
    preview = browser.find_element(By.ID, "preview")
    assert [c.text for c in preview.find_elements(By.TAG_NAME, "th")] == ["city", "temp"]
    assert "Rome" in preview.text
    browser.back()
    click(browser, browser.find_element(By.LINK_TEXT, "weather.table.json"))
    cells = texts(browser, "#preview td")
    assert cells == ["Oslo", "3", "Rome", "18"]
    browser.back()
    click(browser, browser.find_element(By.LINK_TEXT, "all.partitioned-table.json"))
    assert texts(browser, "#preview th") == ["city", "temp"]
    assert texts(browser, "#preview td") == ["Lima", "19", "Pune", "31", "Riga", "7"]
    browser.back()
    click(browser, browser.find_element(By.LINK_TEXT, "pixel.png"))
    image = wait(browser, "#preview img")
    assert browser.execute_script("return arguments[0].naturalWidth", image) == 8
    browser.back()
    click(browser, browser.find_element(By.LINK_TEXT, "readme.txt"))
    assert browser.find_element(By.CSS_SELECTOR, "#preview pre").text == "read me first"


def test_follow_lineage_two_hops_by_clicking(world, browser):
    log_in(browser, world, world.alice)
    browser.get(world.version_url("model"))
    click(browser, browser.find_element(By.ID, "lineage"))
    assert heading(browser) == "Lineage of model:v0"
    start = browser.find_element(By.CSS_SELECTOR, "a.node.start")
    assert start.get_attribute("data-key") == "artifact:cv/pipeline/model:v0"
    train = f"run:cv/pipeline/{world.runs['train']}"
    click(browser, browser.find_element(By.CSS_SELECTOR, f'a.node[data-key="{train}"]'))
    assert heading(browser) == "Lineage of run train"
    clean = "artifact:cv/pipeline/clean:v0"
    click(browser, browser.find_element(By.CSS_SELECTOR, f'a.node[data-key="{clean}"]'))
    assert heading(browser) == "Lineage of clean:v0"

    prep, vocab = f"run:cv/pipeline/{world.runs['prep']}", "artifact:cv/pipeline/vocab:v0"
    raw, model = "artifact:cv/pipeline/raw:v0", "artifact:cv/pipeline/model:v0"
    x = {
        e.get_attribute("data-key"): float(e.find_element(By.TAG_NAME, "rect").get_attribute("x"))
        for e in browser.find_elements(By.CSS_SELECTOR, "a.node")
    }
    assert set(x) == {raw, prep, clean, vocab, train, model}  # 2 hops: not ingest, evaluate
    assert x[raw] < x[prep] < x[clean] == x[vocab] < x[train] < x[model]  # the data flow
    edges = browser.find_element(By.CSS_SELECTOR, "ul.edges").text.splitlines()
    assert f"cv/pipeline/vocab:v0 (dataset) was used by run {train[4:]} (train, train)" in edges
    assert len(edges) == len(browser.find_elements(By.CSS_SELECTOR, "path.edge")) == 5

    click(browser, browser.find_element(By.LINK_TEXT, "3"))
    assert len(browser.find_elements(By.CSS_SELECTOR, "a.node")) == 8  # ingest, evaluate too
    click(browser, browser.find_element(By.ID, "open-start"))
    assert heading(browser).startswith("clean:v0")


def test_screenshots_of_the_lineage_and_version_pages(world, browser):
    """Pictures for people (and the README): look at artifacts/screenshots/ after a run."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    log_in(browser, world, world.alice)
    browser.set_window_size(1300, 560)
    browser.get(world.version_url("clean", "lineage") + "?depth=2")
    assert browser.save_screenshot(str(SCREENSHOTS / "lineage.png"))
    browser.set_window_size(1280, 1400)
    browser.get(world.version_url("raw"))
    assert browser.save_screenshot(str(SCREENSHOTS / "version.png"))
    browser.set_window_size(1280, 900)
    for name in ("lineage.png", "version.png"):
        assert (SCREENSHOTS / name).stat().st_size > 10_000


def test_edit_an_alias_and_metadata_and_see_them_in_the_cli(world, browser):
    log_in(browser, world, world.alice)
    browser.get(world.version_url("model"))
    form = browser.find_element(By.ID, "add-alias")
    form.find_element(By.NAME, "alias").send_keys("prod")
    click(browser, form.find_element(By.TAG_NAME, "button"))
    assert "prod" in browser.find_element(By.ID, "aliases").text
    shown = world.show("model:prod")
    assert shown["number"] == 0 and "prod" in shown["aliases"]

    form = browser.find_element(By.ID, "set-metadata")
    form.find_element(By.NAME, "key").send_keys("epochs")
    form.find_element(By.NAME, "value").send_keys("12")
    click(browser, form.find_element(By.TAG_NAME, "button"))
    form = browser.find_element(By.ID, "set-metadata")
    form.find_element(By.NAME, "key").send_keys("note")
    form.find_element(By.NAME, "value").send_keys("not json")
    click(browser, form.find_element(By.TAG_NAME, "button"))
    assert world.show("model:v0")["metadata"] == {"layers": 3, "epochs": 12, "note": "not json"}

    remove_layers = browser.find_element(By.CSS_SELECTOR, 'button[aria-label="remove key layers"]')
    click(browser, remove_layers)
    browser.find_element(By.CSS_SELECTOR, "details.edit summary").click()
    description = browser.find_element(By.CSS_SELECTOR, "#edit-description textarea")
    description.send_keys("trained on clean:v0")
    click(browser, browser.find_element(By.CSS_SELECTOR, "#edit-description button"))
    shown = world.show("model:v0")
    assert shown["metadata"] == {"epochs": 12, "note": "not json"}
    assert shown["description"] == "trained on clean:v0"

    click(browser, browser.find_element(By.CSS_SELECTOR, 'button[aria-label="remove alias prod"]'))
    assert "prod" not in browser.find_element(By.ID, "aliases").text
    assert "prod" not in world.show("model:v0")["aliases"]
    refused = run_artfs("show", "cv/pipeline/model:prod", env=world.env(world.alice), check=False)
    assert refused.returncode == 1


def test_the_store_refuses_an_edit_by_a_reader_and_the_page_says_so(world, browser):
    log_in(browser, world, world.bob)  # bob may read the public project, not change it
    browser.get(world.version_url("raw"))
    form = browser.find_element(By.ID, "add-alias")
    form.find_element(By.NAME, "alias").send_keys("bobs")
    click(browser, form.find_element(By.TAG_NAME, "button"))
    assert "bob may read but not modify cv/pipeline" in browser.find_element(By.ID, "error").text
    assert heading(browser).startswith("raw:v0")
    assert "bobs" not in world.show("raw:v0")["aliases"]


def test_a_private_project_is_refused_to_an_outsider(world, browser):
    log_in(browser, world, world.bob)
    assert "cv/secret" not in browser.find_element(By.TAG_NAME, "main").text
    assert "cv/pipeline" in browser.find_element(By.TAG_NAME, "main").text
    browser.get(world.url("/projects/cv/secret"))
    assert heading(browser) == "Sorry"
    assert "not found" in browser.find_element(By.ID, "error").text

    bob = world.session(world.bob)
    version = world.url("/projects/cv/secret/artifacts/plans/v0")
    for url in (
        world.url("/projects/cv/secret"),
        world.url("/projects/cv/secret/artifacts/plans"),
        version,
        version + "/lineage",
        version + "/files/plans.txt",
        version + "/raw/plans.txt",
        version + "/image/plans.txt",
    ):
        answer = bob.get(url, allow_redirects=False)
        assert answer.status_code == 404, url
        assert "secret plans" not in answer.text and "plans.txt" not in answer.text
        assert answer.headers["content-type"].startswith("text/html")
    assert "cv/secret" not in bob.get(world.url("/")).text
    alice = world.session(world.alice)
    assert alice.get(version + "/raw/plans.txt").content == b"the secret plans\n"

    anonymous = world.session("")
    anonymous.cookies.clear()
    answer = anonymous.get(world.url("/projects/cv/pipeline"), allow_redirects=False)
    assert answer.status_code == 303  # this server lets no one in without a key
    assert answer.headers["location"].startswith("/ui/login?next=%2Fui%2Fprojects")


def test_csrf_check_refuses_forged_posts(world):
    """Posts carrying alice's cookie but not her page's token change nothing."""
    alice = world.session(world.alice)
    edit = world.version_url("clean", "edit")
    token = csrf_of(alice.get(world.version_url("clean")).text)
    forged = {"action": "add-alias", "alias": "forged"}
    attempts = [
        (forged, {}),
        ({**forged, "csrf": "0" * 64}, {}),
        ({**forged, "csrf": csrf_of(world.session(world.bob).get(world.url("/")).text)}, {}),
        ({**forged, "csrf": token}, {"Sec-Fetch-Site": "cross-site"}),
    ]
    for data, headers in attempts:
        answer = alice.post(edit, data=data, headers=headers, allow_redirects=False)
        assert answer.status_code == 403, (data, headers)
    assert "forged" not in world.show("clean:v0")["aliases"]
    refused = alice.post(world.url("/logout"), data={}, allow_redirects=False)
    assert refused.status_code == 403 and COOKIE not in refused.headers.get("set-cookie", "")
    cross_login = alice.post(
        world.url("/login"),
        data={"api_key": world.bob},
        headers={"Sec-Fetch-Site": "cross-site"},
        allow_redirects=False,
    )
    assert cross_login.status_code == 403 and "set-cookie" not in cross_login.headers

    done = alice.post(edit, data={**forged, "csrf": token, "alias": "real"}, allow_redirects=False)
    assert done.status_code == 303
    assert "real" in world.show("clean:v0")["aliases"]


def test_markup_in_user_input_renders_as_text(world, browser):
    log_in(browser, world, world.alice)
    browser.get(world.version_url("raw"))
    description = browser.find_element(By.ID, "description")
    assert description.text == XSS["description"]
    metadata = browser.find_element(By.ID, "metadata")
    assert XSS["key"] in metadata.text and XSS["value"] in metadata.text
    files = browser.find_element(By.ID, "files")
    assert XSS["file"] in files.text
    for where, tags in (
        (description, "script, img"),
        (metadata, "b, script"),
        (files, "img"),
    ):
        assert where.find_elements(By.CSS_SELECTOR, tags) == []
    click(browser, browser.find_element(By.LINK_TEXT, XSS["file"]))
    assert heading(browser) == XSS["file"]
    assert browser.find_element(By.CSS_SELECTOR, "main h1").find_elements(By.TAG_NAME, "img") == []

    browser.get(world.url(f"/projects/cv/pipeline/runs/{world.runs['prep']}"))
    config = browser.find_element(By.ID, "config")
    assert XSS["config_key"] in config.text and XSS["config_value"] in config.text
    assert config.find_elements(By.CSS_SELECTOR, "i, svg") == []
    browser.get(world.version_url("raw", "lineage"))
    with pytest.raises(NoAlertPresentException):
        browser.switch_to.alert.text  # noqa: B018
    assert "pwned" not in browser.title


def test_downloads_are_attachments_and_images_only_images(world):
    alice = world.session(world.alice)
    page = alice.get(world.version_url("raw"))
    policy = page.headers["content-security-policy"]
    assert "default-src 'none'" in policy and "script-src" not in policy
    assert page.headers["x-content-type-options"] == "nosniff"
    for name, data in RAW_FILES.items():
        answer = alice.get(world.version_url("raw", "raw/") + name)
        assert answer.content == data
        assert answer.headers["content-type"] == "application/octet-stream"
        assert answer.headers["content-disposition"].startswith("attachment;")
        assert answer.headers["x-content-type-options"] == "nosniff"
    image = alice.get(world.version_url("raw", "image/pixel.png"))
    assert image.headers["content-type"] == "image/png" and image.content == RAW_FILES["pixel.png"]
    for fake in ("fake.png", "page.html"):
        refused = alice.get(world.version_url("raw", "image/") + fake)
        assert refused.status_code == 400 and b"<script>" not in refused.content
    page = alice.get(world.version_url("raw", "files/fake.png")).text
    assert "not a PNG, JPEG, GIF or WebP image" in page and "<img" not in page


def test_a_sweep_lists_its_runs_best_first(world, browser):
    log_in(browser, world, world.alice)
    browser.get(world.url(f"/projects/cv/pipeline/sweeps/{world.runs['sweep']}"))
    rows = browser.find_elements(By.CSS_SELECTOR, "#sweep-runs tr")[1:]
    assert [r.find_elements(By.TAG_NAME, "td")[3].text for r in rows] == ["0.9", "0.7", "0.5"]
    assert rows[0].get_attribute("class") == "best" and "best" in rows[0].text
    assert [r.find_elements(By.TAG_NAME, "td")[4].text for r in rows] == ["0.01", "0.001", "0.1"]
    click(browser, rows[0].find_element(By.TAG_NAME, "a"))
    assert "acc" in browser.find_element(By.ID, "summary").text


def test_log_out(world, browser):
    log_in(browser, world, world.alice)
    click(browser, browser.find_element(By.ID, "logout"))
    assert heading(browser) == "Log in"
    assert browser.get_cookie(COOKIE) is None
    browser.get(world.version_url("raw"))
    assert heading(browser) == "Log in"  # sent to the login page, to come back after it
    browser.find_element(By.ID, "api_key").send_keys(world.alice)
    click(browser, browser.find_element(By.ID, "login"))
    assert heading(browser).startswith("raw:v0")


def test_a_wrong_key_is_refused_at_login(world, browser):
    browser.get(world.url("/login"))
    browser.delete_all_cookies()
    browser.get(world.url("/login"))
    browser.find_element(By.ID, "api_key").send_keys("artfs_nope_nope")
    click(browser, browser.find_element(By.ID, "login"))
    assert "invalid API key" in browser.find_element(By.ID, "error").text
    assert browser.get_cookie(COOKIE) is None


def test_artfs_ui_serves_the_embedded_store_without_login(embedded):
    """``artfs ui``: this machine only, no login, and still a token on every form."""
    env = {**embedded.env, "ARTFS_ENTITY": "me"}
    run_artfs("put", write_tree(embedded.tmp / "data", {"hello.txt": b"hi"}), "-n", "data", env=env)
    with serve_local_ui(env) as url:
        version = f"{url}/projects/me/proj/artifacts/data/v0"
        answer = requests.get(version, timeout=30)
        assert answer.status_code == 200 and "hello.txt" in answer.text
        assert "local store · me" in answer.text
        elsewhere = requests.get(version, headers={"Host": "attacker.example"}, timeout=30)
        assert elsewhere.status_code == 400  # a rebound DNS name reaches nothing
        edit = {"action": "add-alias", "alias": "local"}
        forged = requests.post(version + "/edit", data=edit, timeout=30)
        assert forged.status_code == 403
        done = requests.post(
            version + "/edit",
            data={**edit, "csrf": csrf_of(answer.text)},
            allow_redirects=False,
            timeout=30,
        )
        assert done.status_code == 303
    shown = json.loads(run_artfs("show", "data:local", "--json", env=env).stdout)
    assert shown["number"] == 0
