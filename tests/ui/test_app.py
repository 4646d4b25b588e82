"""The page end to end through its API with gradio_client, as a browser would use it."""

import os
import socket
import time
import zipfile

import pytest
from gradio_client import Client, handle_file
from gradio_client.exceptions import AppError

from ui.app import ServeOptions, parse_auth, serve
from ui.training import parameter_name, setting_fields
from ui.workspaces import WorkspaceRoot
from workbench.errors import WorkbenchError

TRAINING_TIMEOUT_S = 600


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    root = WorkspaceRoot.create(tmp_path_factory.mktemp("served"))
    app = serve(root, ServeOptions(port=free_port()), prevent_thread_lock=True, quiet=True)
    yield app, root
    app.close()


def zipped(folder, dest):
    with zipfile.ZipFile(dest, "w") as out:
        for path in sorted(folder.rglob("*")):
            out.write(path, f"corpus/{path.relative_to(folder)}")
    return dest


def test_whole_flow_in_the_browser(server, small_corpus, tmp_path):
    app, root = server
    client = Client(app.local_url, verbose=False)
    client.predict("e2e", api_name="/create_workspace")
    ws_root = root.root / "e2e"

    uploaded = client.predict([handle_file(zipped(small_corpus, tmp_path / "corpus.zip"))],
                              api_name="/upload")
    assert "read as **audiofolder**" in uploaded[0]
    upload_name = value_of(uploaded[1])[0]
    assert (ws_root / "uploads" / upload_name / "corpus.zip").is_file()

    summary, splits, _ = client.predict(selected=[upload_name], api_name="/import_data")
    assert "48 utterances" in summary

    check = client.predict(20, api_name="/run_check")
    assert "of 48 utterances kept" in check[0] and (ws_root / "audit.json").is_file()

    alphabet = client.predict(graphemes="ch", api_name="/build_alphabet")
    assert "labels" in alphabet[0] and (ws_root / "vocab.json").is_file()
    assert "ch" in alphabet[1]

    resolved = client.predict("tiny", "10min", api_name="/resolve_settings")
    names = [parameter_name(key) for key, _ in setting_fields()]
    values = dict(zip(names, map(value_of, resolved[2:]), strict=True))
    values.update(optim_max_steps=6, data_max_batch_seconds=10, run_threads=1,
                  run_eval_every=3)
    client.predict(model="tiny", preset="10min", **values, api_name="/start_training")

    run = wait_for_result(ws_root)
    status = wait_for_status(client, run, "Finished")  # the process exits just after
    assert "6 / 6 steps" in status[2]
    fresh = Client(app.local_url, verbose=False)  # another tab, after a reload
    fresh.predict("e2e", api_name="/open_workspace")
    assert "Finished" in fresh.predict(run, api_name="/training_status")[1]

    evaluation = client.predict(run, "test", api_name="/evaluate")
    assert "WER" in evaluation[0]

    clip = next((small_corpus / "clips").iterdir())
    text = client.predict(run, handle_file(clip), api_name="/transcribe")
    assert isinstance(text, str)

    exported = client.predict(run, api_name="/export_model")
    assert exported  # a download for <run>-model.zip


def value_of(output):
    """An output's value (a component update comes back as a dict with its properties)."""
    return output["value"] if isinstance(output, dict) and "value" in output else output


def wait_for_result(ws_root) -> str:
    deadline = time.monotonic() + TRAINING_TIMEOUT_S
    while time.monotonic() < deadline:
        done = sorted(ws_root.glob("runs/*/result.json"))
        if done:
            return done[0].parent.name
        logs = list(ws_root.glob("jobs/*/train.log"))
        if logs and "error:" in logs[0].read_text():
            raise AssertionError(logs[0].read_text())
        time.sleep(1.0)
    raise AssertionError("training did not finish in time")


def wait_for_status(client, run, word, seconds=60.0):
    deadline = time.monotonic() + seconds
    while True:
        status = client.predict(run, api_name="/training_status")
        if word in status[1] or time.monotonic() > deadline:
            assert word in status[1], status[1]
            return status
        time.sleep(0.5)


def test_sessions_never_see_each_others_workspace(server):
    app, _ = server
    alpha, beta = Client(app.local_url, verbose=False), Client(app.local_url, verbose=False)
    alpha.predict("alpha", api_name="/create_workspace")
    beta.predict("beta", api_name="/create_workspace")
    with pytest.raises(AppError, match="beta"):
        beta.predict(20, api_name="/run_check")
    with pytest.raises(AppError, match="alpha") as err:
        alpha.predict(20, api_name="/run_check")
    assert "beta" not in str(err.value)


def test_a_path_is_never_taken_for_a_workspace(server):
    app, root = server
    client = Client(app.local_url, verbose=False)
    for name in ("../escape", "/tmp", "a/b"):
        with pytest.raises(AppError, match="not a workspace name"):
            client.predict(name, api_name="/create_workspace")
    assert not (root.root.parent / "escape").exists()
    with pytest.raises(AppError, match="No workspace is open"):
        client.predict(20, api_name="/run_check")


def test_serving_defaults_are_private(monkeypatch, tmp_path):
    """Local only, no share link, an upload limit, no telemetry and no outside connection."""
    real_connect = socket.socket.connect
    real_getaddrinfo = socket.getaddrinfo
    local = {"127.0.0.1", "localhost", "::1", "0.0.0.0"}

    def connect(sock, address):
        host = address[0] if isinstance(address, tuple) else address
        if sock.family in (socket.AF_INET, socket.AF_INET6) and host not in local:
            raise AssertionError(f"network call to {address}")
        return real_connect(sock, address)

    def getaddrinfo(host, *args, **kwargs):
        if host not in local and host is not None:
            raise AssertionError(f"name lookup of {host}")
        return real_getaddrinfo(host, *args, **kwargs)

    monkeypatch.setattr(socket.socket, "connect", connect)
    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
    root = WorkspaceRoot.create(tmp_path / "root", tmp_path / "root" / "demo")
    app = serve(root, ServeOptions(port=free_port()), prevent_thread_lock=True, quiet=True)
    try:
        assert app.server_name == "127.0.0.1" and not app.share
        assert app.max_file_size == 4 * 1024**3
        assert app.analytics_enabled is False
    finally:
        app.close()
    assert os.environ["GRADIO_ANALYTICS_ENABLED"] == "False"


def test_auth_takes_user_and_password():
    assert parse_auth("maria:s3cret:x") == ("maria", "s3cret:x")
    assert parse_auth(None) is None
    for bad in ("maria", ":x", "maria:"):
        with pytest.raises(WorkbenchError, match="USER:PASS"):
            parse_auth(bad)


def test_the_cli_has_a_ui_command():
    """`workbench ui` binds to this machine and shares nothing unless asked."""
    from workbench.cli import build_parser

    args = build_parser().parse_args(["ui", "-w", "demo_workspace"])
    assert (args.host, args.port, args.share, args.auth) == ("127.0.0.1", 7860, False, None)
