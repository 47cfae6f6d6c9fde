"""Running and administering a server: bootstrap, login, whoami, the admin commands,
team admins, TLS, anonymous reads. Everything goes through the real ``artfs`` command."""

from __future__ import annotations

import json
import os
import stat
import subprocess
from pathlib import Path

import pytest
import requests

from .serverutil import ServerProcess, start_server
from .util import run_artfs, write_tree


def cli_env(tmp_path: Path, server: ServerProcess, key: str | None = None) -> dict[str, str]:
    """An environment pointing at ``server`` with ``key`` (the admin's by default)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("ARTFS_")}
    env.update(
        XDG_CONFIG_HOME=str(tmp_path / "config"),
        ARTFS_CACHE_DIR=str(tmp_path / "cache"),
        **server.client_env(),
    )
    if key is not None:
        env["ARTFS_API_KEY"] = key
    return env


def test_first_start_creates_the_admin_key_once(artfs_server):
    key_file = artfs_server.data / "admin.key"
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    key = artfs_server.admin_key
    assert artfs_server.admin().whoami()["user"] == "admin"
    artfs_server.stop()
    artfs_server.start()
    assert artfs_server.admin_key == key  # a restart keeps the admin and its key
    assert requests.get(artfs_server.url + "/openapi.json", timeout=10).json()["paths"]


def test_login_whoami_and_config_file(artfs_server, tmp_path):
    env = cli_env(tmp_path, artfs_server)
    key = env.pop("ARTFS_API_KEY")
    url = env.pop("ARTFS_URL")
    out = run_artfs("login", url, env=env, input=key + "\n").stdout
    assert f"logged in to {url} as admin" in out
    config = tmp_path / "config" / "artfs" / "config.json"
    assert stat.S_IMODE(config.stat().st_mode) == 0o600
    assert json.loads(config.read_text()) == {"url": url, "api_key": key}
    assert run_artfs("whoami", env=env).stdout.startswith(f"admin at {url} (server admin)")
    wrong = run_artfs("login", url, "--key", "artfs_0000_bad", env=env, check=False)
    assert wrong.returncode != 0
    assert wrong.stderr.strip() == "artfs: error: invalid API key"
    assert json.loads(config.read_text())["api_key"] == key  # a failed login saves nothing


def test_admin_commands(artfs_server, tmp_path):
    env = cli_env(tmp_path, artfs_server)
    created = run_artfs("admin", "user", "create", "alice", env=env).stdout.splitlines()
    alice = created[-1]
    assert alice.startswith("artfs_")
    alice_env = cli_env(tmp_path, artfs_server, alice)
    assert run_artfs("whoami", env=alice_env).stdout.startswith("alice at ")
    run_artfs("admin", "team", "create", "vision", env=env)
    run_artfs("admin", "member", "add", "vision", "alice", "--role", "admin", env=env)
    assert "team vision (admin)" in run_artfs("whoami", env=alice_env).stdout
    out = run_artfs("admin", "project", "create", "vision/cats", "--visibility", "public", env=env)
    assert "vision/cats (public)" in out.stdout
    run_artfs("admin", "project", "set-visibility", "vision/cats", "open", env=env)
    listing = run_artfs("ls", "--entity", "vision", env=alice_env).stdout
    assert "vision/cats  open" in listing
    second = run_artfs("admin", "key", "create", env=alice_env).stdout.splitlines()[-1]
    assert run_artfs("whoami", env=cli_env(tmp_path, artfs_server, second)).returncode == 0
    run_artfs("admin", "key", "revoke", second, env=alice_env)
    revoked = run_artfs("whoami", env=cli_env(tmp_path, artfs_server, second), check=False)
    assert revoked.returncode == 1 and "revoked" in revoked.stderr
    assert len(revoked.stderr.strip().splitlines()) == 1
    keys = run_artfs("admin", "key", "list", "--user", "alice", env=env).stdout
    assert second.split("_")[1] in keys
    users = run_artfs("admin", "user", "list", env=env).stdout
    assert "alice" in users and "admin" in users
    bad = run_artfs(
        "admin", "project", "set-visibility", "vision/cats", "secret", env=env, check=False
    )
    assert bad.returncode == 1 and "visibility must be one of" in bad.stderr


def test_team_admins_manage_their_team_only(artfs_server, tmp_path):
    admin = artfs_server.admin()
    admin.create_team("vision")
    admin.create_team("audio")
    lead = artfs_server.add_user("lead", {"vision": "admin"})
    member = artfs_server.add_user("member", {"vision": "member"})
    artfs_server.add_user("newbie")
    lead_env = cli_env(tmp_path, artfs_server, lead)
    member_env = cli_env(tmp_path, artfs_server, member)
    run_artfs("admin", "member", "add", "vision", "newbie", env=lead_env)
    run_artfs("admin", "project", "create", "vision/dogs", env=lead_env)
    run_artfs("admin", "project", "set-visibility", "vision/dogs", "public", env=lead_env)
    refused = {
        ("member", "add", "audio", "newbie"): "not a member of audio",
        ("project", "create", "audio/x"): "not a member of audio",
        ("user", "create", "mallory"): "needs a server administrator",
        ("team", "create", "rogue"): "needs a server administrator",
    }
    for args, message in refused.items():
        answer = run_artfs("admin", *args, env=lead_env, check=False)
        assert answer.returncode == 1 and message in answer.stderr, args
    by_member = run_artfs(
        "admin", "member", "add", "vision", "newbie", "--role", "admin", env=member_env, check=False
    )
    assert by_member.returncode == 1 and "not an admin of vision" in by_member.stderr
    roles = {m.user: m.role for m in admin.list_members("vision")}
    assert roles == {"lead": "admin", "member": "member", "newbie": "member"}


def test_first_put_of_a_member_creates_a_private_project(artfs_server, tmp_path):
    artfs_server.admin().create_team("vision")
    member = artfs_server.add_user("member", {"vision": "member"})
    outsider = artfs_server.add_user("outsider")
    src = write_tree(tmp_path / "src", {"a.txt": b"hello"})
    env = cli_env(tmp_path, artfs_server, member)
    run_artfs("put", src, "-n", "vision/fresh/ds", env=env)
    projects = artfs_server.admin().list_projects("vision")
    assert [(p.name, p.visibility) for p in projects] == [("fresh", "private")]
    outsider_env = cli_env(tmp_path, artfs_server, outsider)
    stranger = run_artfs("put", src, "-n", "vision/other/ds", check=False, env=outsider_env)
    assert stranger.returncode == 1 and "project vision/other not found" in stranger.stderr
    # the same answer as for the team's existing private project: nothing is revealed
    existing = run_artfs("put", src, "-n", "vision/fresh/ds", check=False, env=outsider_env)
    assert existing.returncode == 1 and "project vision/fresh not found" in existing.stderr
    assert len(artfs_server.admin().list_projects("vision")) == 1


def test_anonymous_reads_only_with_the_flag(tmp_path):
    server = start_server(tmp_path / "server", "--allow-anonymous-read")
    try:
        src = write_tree(tmp_path / "src", {"a.txt": b"open data"})
        admin_env = cli_env(tmp_path, server)
        server.admin().create_project("admin", "pub", "public")
        run_artfs("put", src, "-n", "admin/pub/ds", env=admin_env)
        anonymous = server.user_env(None) | {
            "XDG_CONFIG_HOME": str(tmp_path / "config"),
            "ARTFS_CACHE_DIR": str(tmp_path / "anon-cache"),
        }
        env = {k: v for k, v in os.environ.items() if not k.startswith("ARTFS_")} | anonymous
        run_artfs("get", "admin/pub/ds", "--root", tmp_path / "out", env=env)
        assert (tmp_path / "out" / "a.txt").read_bytes() == b"open data"
        refused = run_artfs("put", src, "-n", "admin/pub/ds2", env=env, check=False)
        assert refused.returncode == 1 and "authentication required" in refused.stderr
    finally:
        server.stop()
    strict = start_server(tmp_path / "server")  # same data, restarted without the flag
    try:
        env["ARTFS_URL"] = strict.url
        refused = run_artfs(
            "get", "admin/pub/ds", "--root", tmp_path / "out2", env=env, check=False
        )
        assert refused.returncode == 1 and "authentication required" in refused.stderr
    finally:
        strict.stop()


@pytest.fixture
def tls_pair(tmp_path: Path) -> tuple[Path, Path]:
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(
        [
            "openssl",
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "1",
            "-subj",
            "/CN=127.0.0.1",
            "-addext",
            "subjectAltName=IP:127.0.0.1",
            "-keyout",
            str(key),
            "-out",
            str(cert),
        ],
        check=True,
        capture_output=True,
    )
    return cert, key


def test_tls(tmp_path, tls_pair):
    server = start_server(tmp_path / "server", tls=tls_pair)
    try:
        assert server.url.startswith("https://")
        env = cli_env(tmp_path, server)
        src = write_tree(tmp_path / "src", {"model.bin": os.urandom(300_000)})
        run_artfs("put", src, "-n", "proj/model", env=env)
        run_artfs("get", "proj/model", "--root", tmp_path / "out", env=env)
        assert (tmp_path / "out" / "model.bin").read_bytes() == (src / "model.bin").read_bytes()
        login = requests.post(
            server.url + "/ui/login",
            data={"api_key": server.admin_key},
            verify=str(tls_pair[0]),
            allow_redirects=False,
        )
        assert login.status_code == 303 and "; secure" in login.headers["set-cookie"].lower()
        untrusted = {k: v for k, v in env.items() if k != "REQUESTS_CA_BUNDLE"}
        refused = run_artfs("whoami", env=untrusted, check=False)
        assert refused.returncode == 1 and "TLS" in refused.stderr
        assert len(refused.stderr.strip().splitlines()) == 1
        with pytest.raises(requests.ConnectionError):
            requests.get(server.url.replace("https", "http") + "/healthz", timeout=5)
    finally:
        server.stop()


def test_unreachable_server_is_one_line(tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith("ARTFS_")}
    env.update(
        ARTFS_URL="http://127.0.0.1:9",
        ARTFS_API_KEY="artfs_x_y",
        XDG_CONFIG_HOME=str(tmp_path / "config"),
        ARTFS_CACHE_DIR=str(tmp_path / "c"),
    )
    answer = run_artfs("ls", env=env, check=False)
    assert answer.returncode == 1
    assert answer.stderr.strip() == (
        "artfs: error: cannot reach the artfs server at http://127.0.0.1:9: "
        "[Errno 111] Connection refused"
    )
