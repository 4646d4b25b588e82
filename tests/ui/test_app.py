"""The page end to end through its API with gradio_client, as a browser would use it."""

import json
import os
import socket
import time
import zipfile

import pytest
from gradio_client import Client, handle_file
from gradio_client.exceptions import AppError

from tests.ui.conftest import free_port
from ui.app import ServeOptions, parse_auth, serve
from ui.steps.train import parameter_name, setting_fields
from ui.workspaces import WorkspaceRoot
from workbench.errors import WorkbenchError
from workbench.run import find_run, list_runs, run_names
from workbench.workspace import Workspace

TRAINING_TIMEOUT_S = 600


def zipped(folder, dest):
    with zipfile.ZipFile(dest, "w") as out:
        for path in sorted(folder.rglob("*")):
            out.write(path, f"corpus/{path.relative_to(folder)}")
    return dest


def test_whole_flow_in_the_browser(server, small_corpus, tmp_path):
    """Every figure the page shows is the workspace's own: the manifests, audit.json, the
    vocabulary, the run's metrics and report, and what the library transcribes."""
    from workbench.transcribe import transcribe_files

    app, root = server
    client = Client(app.local_url, verbose=False)
    client.predict("e2e", api_name="/create_workspace")
    ws = Workspace.at(root.root / "e2e")

    upload_name = upload(client, zipped(small_corpus, tmp_path / "corpus.zip"))
    assert (ws.root / "uploads" / upload_name / "corpus.zip").is_file()

    summary, splits, _ = client.predict(selected=[upload_name], api_name="/import_data")
    manifests = ws.read_all()
    assert summary.startswith("Imported **48 utterances**")
    assert sum(len(us) for us in manifests.values()) == 48
    assert splits["data"] == [
        [split, len(us), round(sum(u.duration for u in us) / 60, 2),
         len({u.speaker for u in us if u.speaker})] for split, us in manifests.items()]

    check = client.predict(20, api_name="/run_check")
    audit = json.loads(ws.audit_path.read_text(encoding="utf-8"))
    assert check[0].startswith(f"**{audit['total']['kept']} of 48 utterances kept**")
    assert [row[0] for row in check[6]["data"]] == [
        u.id for us in manifests.values() for u in us]

    alphabet = client.predict(graphemes="ch", api_name="/build_alphabet")
    vocab = json.loads(ws.vocab_path.read_text(encoding="utf-8"))
    assert alphabet[0].startswith(f"**{len(vocab)} labels**") and "ch" in vocab
    assert "<b>ch</b>" in alphabet[1]

    start_training(client, max_steps=6)
    run = wait_for_result(ws)
    status = wait_for_status(client, run, "Finished")  # the process exits just after
    assert "6 / 6 steps" in status[2]
    best = find_run(ws, run).best()
    assert f"Best dev CER {best['dev_cer']:.3f}" in status[1]
    fresh = Client(app.local_url, verbose=False)  # another tab, after a reload
    fresh.predict("e2e", api_name="/open_workspace")
    assert fresh.predict(run, api_name="/training_status")[1] == status[1]

    evaluation = client.predict(run, "test", api_name="/evaluate")
    assert evaluation[2] == "greedy (no language model)"  # the decoding comes back with it
    report = find_run(ws, run).read_reports()["test"]
    assert evaluation[0].startswith(f"**test split of run {run}: WER {report['wer']:.1%}, "
                                    f"CER {report['cer']:.1%}, GER {report['ger']:.1%}** over "
                                    f"{report['rates']['utterances']} utterances")
    assert [row[:6] for row in evaluation[1]["data"]] == [
        [u["id"], round(u["wer"], 3), round(u["cer"], 3), round(u["ger"], 3), u["reference"],
         u["hypothesis"]] for u in report["utterances"]]

    clip = sorted((small_corpus / "clips").iterdir())[0]
    text, with_lm = client.predict(run, handle_file(clip), api_name="/transcribe")
    model = find_run(ws, run).model_dir
    assert text == transcribe_files([clip], model, progress=False)[0].text
    assert with_lm == ""  # greedy decoding: nothing in the LM box

    exported = value_of(client.predict(run, api_name="/export_model"))
    with zipfile.ZipFile(exported) as archive:
        names = set(archive.namelist())
        weights = archive.read(f"{run}/model/model.safetensors")
    assert weights == (model / "model.safetensors").read_bytes()
    assert {f"{run}/config.yaml", f"{run}/result.json", f"{run}/report.json"} <= names
    assert run_names(ws) == [run]


def upload(client: Client, path) -> str:
    """Upload one file; the name of the upload the page made for it."""
    uploaded = client.predict([handle_file(path)], api_name="/upload")
    assert "read as **audiofolder**" in uploaded[0]
    return value_of(uploaded[1])[0]


def start_training(client: Client, *, max_steps: int, model: str = "tiny"):
    """Press Start with the tiny model, a few steps and one thread (the settings the page
    resolved for it, with these edits)."""
    resolved = client.predict(model, "10min", api_name="/resolve_settings")
    names = [parameter_name(key) for key, _ in setting_fields()]
    values = dict(zip(names, map(value_of, resolved[2:]), strict=True))
    values.update(optim_max_steps=max_steps, data_max_batch_seconds=10, run_threads=1,
                  run_eval_every=3)
    return client.predict(model=model, preset="10min", **values, api_name="/start_training")


def value_of(output):
    """An output's value (a component update comes back as a dict with its properties)."""
    return output["value"] if isinstance(output, dict) and "value" in output else output


def wait_for_result(ws: Workspace) -> str:
    """The name of the workspace's first finished run, once there is one (a safety limit
    only: the runs are bounded by their steps)."""
    deadline = time.monotonic() + TRAINING_TIMEOUT_S
    while time.monotonic() < deadline:
        done = [run.name for run in list_runs(ws) if run.finished]
        if done:
            return done[0]
        logs = list(ws.root.glob("jobs/*/train.log"))
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
