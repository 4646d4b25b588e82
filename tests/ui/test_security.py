"""What guards the served page, probed as an attacker would: raw HTTP against a real server.

Host names (DNS rebinding), requests from other sites (uploads and API calls), per-user
folders with several accounts, slowed-down password guessing, and no server path in the
page's messages.
"""

from __future__ import annotations

import asyncio
import socket
import time
import zipfile

import httpx
import pytest
from gradio_client import Client, handle_file
from gradio_client.exceptions import AppError

from tests.ui.conftest import free_port
from ui import security
from ui.app import ServeOptions, parse_auth_file, serve
from ui.workspaces import WorkspaceRoot
from workbench.errors import WorkbenchError

ACCOUNTS = [("ana", "pw-ana"), ("ben", "pw-ben")]
EVIL = "http://evil.example"


@pytest.fixture(scope="module")
def users_server(tmp_path_factory):
    """The page with two accounts: each user in their own folder."""
    root = WorkspaceRoot.create(tmp_path_factory.mktemp("users"))
    app = serve(root, ServeOptions(port=free_port(), auth=ACCOUNTS),
                prevent_thread_lock=True, quiet=True)
    yield app, root
    app.close()


def origin_of(app) -> str:
    return app.local_url.rstrip("/")


def upload(app, **headers) -> httpx.Response:
    return httpx.post(app.local_url + "gradio_api/upload", headers=headers,
                      files={"files": ("clip.txt", b"hello")})


# --------------------------------------------------------------------------- host names


def test_only_this_servers_host_names_are_answered(server):
    app, _ = server
    port = app.server_port
    for host in ("evil.example", f"evil.example:{port}", "127.0.0.1.nip.io", "",
                 f"localhost.evil.example:{port}", "[::1", "127.0.0.1:x"):
        for response in (httpx.get(app.local_url, headers={"Host": host}),
                         httpx.get(app.local_url + "config", headers={"Host": host}),
                         upload(app, Host=host)):
            assert response.status_code == 400, (host, response.status_code)
            assert "does not answer to the host name" in response.text
    for host in (f"127.0.0.1:{port}", f"localhost:{port}", f"[::1]:{port}", "LOCALHOST"):
        response = httpx.get(app.local_url + "config", headers={"Host": host})
        assert response.status_code == 200 and "components" in response.json()


def test_uploads_and_calls_from_another_site_are_refused(server):
    app, root = server
    for headers in ({"Origin": EVIL}, {"Origin": "null"},
                    {"Referer": f"{EVIL}/page.html"},
                    {"Origin": f"http://localhost:{app.server_port + 1}"}):
        response = upload(app, **headers)
        assert response.status_code == 403, headers
        assert "another site" in response.text
    # An API call from another site changes nothing.
    response = httpx.post(app.local_url + "gradio_api/call/create_workspace",
                          json={"data": ["planted"]}, headers={"Origin": EVIL})
    assert response.status_code == 403 and not (root.root / "planted").exists()


def test_the_pages_own_requests_go_through(server):
    app, root = server
    for host in (f"127.0.0.1:{app.server_port}", f"localhost:{app.server_port}"):
        response = upload(app, Origin=f"http://{host}", Host=host)  # a page at that address
        assert response.status_code == 200, response.text
        assert response.json()[0].endswith("clip.txt")
    response = upload(app, Referer=app.local_url)
    assert response.status_code == 200
    Client(app.local_url, verbose=False).predict("mine", api_name="/create_workspace")
    assert (root.root / "mine").is_dir()  # a client that is no browser sends no Origin


def test_host_policy_by_bind():
    loopback = security.host_policy("127.0.0.1")
    assert loopback.names == {"localhost", "127.0.0.1", "::1"} and not loopback.any_ip
    assert not loopback.allows("192.168.1.5") and not loopback.allows("evil.example")
    lan = security.host_policy("192.168.1.5", ["asr.example.org"])
    assert lan.allows("192.168.1.5") and lan.allows("asr.example.org")
    assert not lan.allows("10.0.0.1")
    wildcard = security.host_policy("0.0.0.0")
    assert wildcard.allows("10.0.0.1") and wildcard.allows("fe80::1")
    assert wildcard.allows(socket.gethostname().lower()) and not wildcard.allows("evil.example")
    assert security.split_host("[::1]:7860") == ("::1", 7860)
    assert security.split_host("Example.ORG.") == ("example.org", None)
    assert security.same_origin("https://asr.example.org", "asr.example.org")
    assert security.same_origin("http://127.0.0.1:7860/x?y", "127.0.0.1:7860")
    assert not security.same_origin("http://127.0.0.1:7861", "127.0.0.1:7860")
    assert not security.same_origin("https://127.0.0.1", "127.0.0.1:80")


# --------------------------------------------------------------------------- users


def test_each_user_sees_and_acts_on_their_own_workspaces_only(users_server):
    app, root = users_server
    ana = Client(app.local_url, auth=ACCOUNTS[0], verbose=False)
    ben = Client(app.local_url, auth=ACCOUNTS[1], verbose=False)
    ana.predict("quechua", api_name="/create_workspace")
    (root.root / "ana" / "quechua" / "workbench.yaml").write_text("seed: 0\n")
    listed = ana.predict("aymara", api_name="/create_workspace")[0]
    assert listed["choices"] == [["aymara", "aymara"], ["quechua", "quechua"]]  # her own
    with pytest.raises(AppError, match="There is no workspace 'quechua'"):
        ben.predict("quechua", api_name="/open_workspace")  # not ben's to open
    with pytest.raises(AppError, match="No workspace is open"):
        ben.predict(20, api_name="/run_check")  # nor to act on
    assert ben.predict("quechua", api_name="/create_workspace")[0]["choices"] == [
        ["quechua", "quechua"]]  # his own, new
    assert sorted(p.relative_to(root.root).as_posix() for p in root.root.glob("*/*")
                  if not p.parent.name.startswith(".")) == [
        "ana/aymara", "ana/quechua", "ben/quechua"]
    with pytest.raises(AppError, match="quechua has no prepared data") as err:
        ben.predict(20, api_name="/run_check")  # his own, empty, workspace: not ana's
    assert str(root.root) not in str(err.value)  # named, not shown by its server path
    assert not (root.root / "ana" / "quechua" / "audit.json").exists()


def test_several_users_need_folder_names_and_no_shared_workspace(tmp_path):
    with pytest.raises(WorkbenchError, match="Leave out -w"):
        serve(WorkspaceRoot.create(None, tmp_path / "demo"),
              ServeOptions(port=free_port(), auth=ACCOUNTS), prevent_thread_lock=True)
    with pytest.raises(WorkbenchError, match="'ana lópez' is not one"):
        serve(WorkspaceRoot.create(tmp_path), ServeOptions(
            port=free_port(), auth=[("ana lópez", "x"), ("ben", "y")]),
            prevent_thread_lock=True)
    with pytest.raises(WorkbenchError, match="given twice"):
        ServeOptions(auth=[("ana", "x"), ("ana", "y")]).accounts()
    accounts = tmp_path / "accounts.txt"
    accounts.write_text("# the team\nana:pw:with:colons\n\nben:pw-ben\n", encoding="utf-8")
    assert parse_auth_file(accounts) == [("ana", "pw:with:colons"), ("ben", "pw-ben")]
    accounts.write_text("ana:pw\nben\n", encoding="utf-8")
    with pytest.raises(WorkbenchError, match="line 2"):
        parse_auth_file(accounts)


# --------------------------------------------------------------------------- login


def login(app, user: str, password: str) -> tuple[int, float]:
    start = time.monotonic()
    response = httpx.post(app.local_url + "login",
                          data={"username": user, "password": password})
    return response.status_code, time.monotonic() - start


def test_repeated_wrong_passwords_are_slowed_down(users_server, monkeypatch):
    app, _ = users_server
    monkeypatch.setattr(security, "FIRST_DELAY_S", 0.2)  # 0.2, 0.4, 0.8 s after 3 failures
    free = [login(app, "ben", f"guess-{i}") for i in range(security.FREE_ATTEMPTS)]
    assert [status for status, _ in free] == [400] * security.FREE_ATTEMPTS
    slowed = [login(app, "ben", f"guess-more-{i}") for i in range(3)]
    assert [status for status, _ in slowed] == [400] * 3
    for (_, seconds), expected in zip(slowed, (0.2, 0.4, 0.8), strict=True):
        assert seconds >= expected
    status, seconds = login(app, "ben", "pw-ben")  # the right one still logs in (and waits)
    assert status == 200 and seconds >= 1.6
    assert login(app, "ben", "wrong")[0] == 400  # a success reset the count


def test_guessing_in_parallel_is_no_faster(monkeypatch):
    monkeypatch.setattr(security, "FIRST_DELAY_S", 0.05)
    throttle = security.LoginThrottle({"ana": "pw"})

    async def guesses() -> tuple[list[bool], float]:
        for i in range(security.FREE_ATTEMPTS):
            assert not await throttle.check("ana", f"guess-{i}")
        start = time.monotonic()
        results = await asyncio.gather(*(throttle.check("ana", f"x{i}") for i in range(4)))
        return results, time.monotonic() - start

    results, seconds = asyncio.run(guesses())
    assert results == [False] * 4 and seconds >= 0.05 + 0.1 + 0.2 + 0.4
    assert throttle.delay(50) == security.MAX_DELAY_S
    # Unknown names share one count: spraying names is slowed down as well.
    assert throttle.failures.keys() == {"ana"}
    asyncio.run(throttle.check("nobody", "x"))
    asyncio.run(throttle.check("nobody2", "x"))
    assert throttle.failures.keys() == {"ana", security.UNKNOWN_USER}
    assert throttle.failures[security.UNKNOWN_USER].count == 2


# --------------------------------------------------------------------------- messages


def test_a_refused_upload_names_the_file_not_the_server_paths(server, tmp_path):
    app, root = server
    client = Client(app.local_url, verbose=False)
    client.predict("bombed", api_name="/create_workspace")
    bomb = tmp_path / "corpus.zip"
    link = zipfile.ZipInfo("corpus/link")
    link.external_attr = 0o120777 << 16  # a symbolic link to /etc/passwd
    with zipfile.ZipFile(bomb, "w") as out:
        out.writestr("corpus/a.txt", "a")
        out.writestr(link, "/etc/passwd")
    with pytest.raises(AppError) as err:
        client.predict([handle_file(bomb)], api_name="/upload")
    message = str(err.value)
    assert "corpus.zip" in message and "symbolic link" in message
    assert str(root.root) not in message and str(tmp_path) not in message
    assert "/tmp/" not in message and "gradio" not in message
    uploads = root.root / "bombed" / "uploads"
    assert not uploads.exists() or not any(uploads.iterdir())  # the refused upload is gone


def test_the_cli_takes_several_accounts_and_host_names(tmp_path, monkeypatch):
    import ui.app
    from workbench.cli import main

    served = {}
    monkeypatch.setattr(ui.app, "serve", lambda root, options: served.update(
        root=root, options=options))
    accounts = tmp_path / "accounts.txt"
    accounts.write_text("cai:pw-cai\n", encoding="utf-8")
    assert main(["ui", "--root", str(tmp_path), "--auth", "ana:pw-ana", "--auth", "ben:pw-ben",
                 "--auth-file", str(accounts), "--allow-host", "asr.example.org"]) == 0
    options = served["options"]
    assert options.accounts() == {"ana": "pw-ana", "ben": "pw-ben", "cai": "pw-cai"}
    assert options.allowed_hosts == ("asr.example.org",) and options.host == "127.0.0.1"
    assert main(["ui", "--root", str(tmp_path), "--auth", "ana"]) == 2  # a message, no trace
