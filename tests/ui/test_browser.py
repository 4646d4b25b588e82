"""The page in a real browser: Debian's chromium, headless, driven by Playwright.

The workbench's page renders client-side (Svelte), so a test through the API alone cannot see
a step that draws nothing, a table that stays empty or a plot that fails in the browser. This
test serves a prepared workspace (imported, checked, with a vocabulary and a finished tiny
run), opens it in headless chromium, goes through the nine steps, checks what each one shows,
builds and tunes a language model from an uploaded text, presses the buttons of Evaluate
(greedy, then with the language model) and Export (the ONNX export shows what it does while it
runs), and saves a full-page screenshot of every step at 1400 px and at a laptop's 1280x720.

It uses the system's chromium (``apt-get install chromium``; ``bash scripts/setup.sh --test``
installs it) and the Python ``playwright`` package, whose own browser downloads are never
used: nothing here needs the network. Without chromium the test is skipped on a developer's
machine and fails in CI (where ``CI`` is set), so it is never skipped there unnoticed.

Screenshots go to the test's temporary folder and, when ``WORKBENCH_SCREENSHOTS`` names a
folder, there too.
"""

from __future__ import annotations

import json
import os
import re
import shutil
from pathlib import Path
from urllib.parse import urlsplit

import pytest
import soundfile as sf

from data_recipes import prepare_sources
from tests.data_recipes.test_untranscribed import demo_clips, recording
from tests.ui.conftest import free_port
from ui.app import ServeOptions, serve
from ui.workspaces import WorkspaceRoot
from workbench.audit import run_audit
from workbench.vocab import build_workspace_vocab

CHROMIUM = Path("/usr/bin/chromium")
SETUP_HINT = "run `bash scripts/setup.sh --test` (as root) to install chromium and playwright"
# Offline and quiet: no sandbox (root in a container), no GPU, no background or update traffic.
CHROMIUM_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
    "--disable-component-update", "--no-first-run", "--disable-quic", "--disable-sync",
]
TIMEOUT_MS = 90_000  # the page renders client-side, on a machine that may be busy
WORKSPACE = "quechua"
STEPS = ("1. Data", "2. Check", "3. Alphabet", "4. Train", "5. Language model", "6. Evaluate",
         "7. Try it", "8. Export", "9. Untranscribed")
TRAINING = ["model.name=tiny", "optim.max_steps=6", "data.max_batch_seconds=10",
            "run.threads=1", "run.eval_every=3", "run.log_every=1"]
LOCAL_HOSTS = {"127.0.0.1", "localhost", "[::1]", "::1"}
WIDE = {"width": 1400, "height": 900}  # screenshots of every step at both sizes
LAPTOP = {"width": 1280, "height": 720}


def require_browser():
    """Playwright's sync API, or a skip (developer's machine) or failure (CI) saying why."""
    problems = []
    if not CHROMIUM.is_file():
        problems.append(f"{CHROMIUM} is missing")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        sync_playwright = None
        problems.append("the Python package playwright is missing")
    if problems:
        message = f"The browser test needs chromium and playwright: {'; '.join(problems)}. " \
                  f"To fix, {SETUP_HINT}."
        if "CI" in os.environ:
            pytest.fail(message)
        pytest.skip(message)
    return sync_playwright


@pytest.fixture
def browser_api():
    """Playwright's ``sync_playwright``, checked before the workspace is prepared."""
    return require_browser()


@pytest.fixture
def prepared_root(small_corpus, tmp_path) -> tuple[WorkspaceRoot, str]:
    """A served root whose default workspace is imported, checked, has a vocabulary and a
    finished 6-step run of the tiny model (trained in this process: a few seconds)."""
    import torch

    from workbench.config import build_config
    from workbench.train import train
    from workbench.workspace import Workspace

    ws = Workspace.at(tmp_path / "root" / WORKSPACE)
    prepare_sources([small_corpus], ws, progress=False)
    run_audit(ws)
    build_workspace_vocab(ws)
    threads = torch.get_num_threads()
    try:
        result = train(ws, build_config(preset="10min", overrides=TRAINING), progress=False)
    finally:
        torch.set_num_threads(threads)  # train() set it for the whole process
    return WorkspaceRoot.create(tmp_path / "root", ws.root), result.run_dir.name


@pytest.fixture
def page_url(prepared_root):
    root, _ = prepared_root
    app = serve(root, ServeOptions(port=free_port()), prevent_thread_lock=True, quiet=True)
    yield app.local_url
    app.close()


@pytest.fixture
def screenshots(tmp_path) -> list[Path]:
    """Folders the screenshots are saved to: the test's own, and $WORKBENCH_SCREENSHOTS."""
    folders = [tmp_path / "screenshots"]
    if os.environ.get("WORKBENCH_SCREENSHOTS"):
        folders.append(Path(os.environ["WORKBENCH_SCREENSHOTS"]))
    for folder in folders:
        folder.mkdir(parents=True, exist_ok=True)
    return folders


def test_every_step_renders_in_chromium(browser_api, page_url, prepared_root, screenshots,
                                        demo_corpus, tmp_path):
    from playwright.sync_api import expect

    root, run = prepared_root
    ws_root = root.default
    labels = len(json.loads((ws_root / "vocab.json").read_text(encoding="utf-8")))
    expect.set_options(timeout=TIMEOUT_MS)

    def only_local(route):
        host = urlsplit(route.request.url).hostname or ""
        if route.request.url.startswith(("data:", "blob:")) or host in LOCAL_HOSTS:
            route.continue_()
        else:  # e.g. a web font: the page must render without it, and the test stay offline
            route.abort()

    with browser_api() as playwright:
        browser = playwright.chromium.launch_persistent_context(
            str(tmp_path / "chromium-profile"), executable_path=str(CHROMIUM), headless=True,
            args=CHROMIUM_ARGS, viewport=WIDE)
        try:
            browser.route("**/*", only_local)
            page = browser.new_page()
            page.set_default_timeout(TIMEOUT_MS)
            page_errors: list[str] = []
            page.on("pageerror", lambda error: page_errors.append(str(error)))
            page.goto(page_url)

            # The page is drawn by its script, and the workspace restored on load.
            expect(page.get_by_role("tab")).to_have_text(list(STEPS))
            expect(page.get_by_text("Speech recogniser workbench").first).to_be_visible()
            expect(page.get_by_role("combobox", name="Workspace")).to_have_value(WORKSPACE)
            expect(page.get_by_text("1. Data: 48 utterances")).to_be_visible()

            def open_step(name: str):
                page.get_by_role("tab", name=name).click()
                expect(page.get_by_role("tab", name=name)).to_have_attribute(
                    "aria-selected", "true")
                return page.locator('[role="tabpanel"]:visible').first  # a step's, not a sub-tab's

            def finish_step(name: str, panel, suffix: str = "") -> None:
                expect(panel).to_have_count(1)
                no_error_toast(page)
                shot = (f"{STEPS.index(name) + 1}-{name[3:].lower().replace(' ', '-')}"
                        f"{suffix}.png")
                page.screenshot(path=str(screenshots[0] / shot), full_page=True)
                for folder in screenshots[1:]:
                    shutil.copy(screenshots[0] / shot, folder / shot)

            panel = open_step("1. Data")
            expect(panel).to_contain_text(f"48 utterances ({imported_minutes(ws_root):.1f} min, "
                                          "12 speakers) imported")
            expect(panel.get_by_text("Imported, per split")).to_be_visible()
            finish_step("1. Data", panel)

            panel = open_step("2. Check")
            expect(panel).to_contain_text("48 of 48 utterances kept")
            expect(block(panel, "Per split")).to_contain_text("total")
            expect(panel).to_contain_text("Clip durations")  # the plots drew their titles
            expect(panel).to_contain_text("Minutes per speaker")
            expect(block(panel, "Utterances (click a row)")).to_contain_text("clips__qu_00001")
            finish_step("2. Check", panel)

            panel = open_step("3. Alphabet")
            expect(panel).to_contain_text(f"{labels} labels")
            chips = panel.locator(".wb-alphabet .wb-chip")
            expect(chips.first).to_be_visible()
            assert chips.count() >= labels - 3  # every label but [PAD], [UNK] and |
            expect(block(panel, "Labels in train, with counts")).to_contain_text("a")
            finish_step("3. Alphabet", panel)

            panel = open_step("4. Train")
            expect(panel.get_by_role("combobox", name="Run")).to_have_value(run)
            expect(panel).to_contain_text("Finished: step 6 of 6")
            expect(panel).to_contain_text("6 / 6 steps")
            expect(panel).to_contain_text("Training loss")
            expect(panel).to_contain_text("Dev CER, GER and WER")
            finish_step("4. Train", panel)

            panel = open_step("5. Language model")
            expect(panel).to_contain_text("Optional. A community usually has far more text")
            text = tmp_path / "stories.txt"
            text.write_text(community_text(ws_root), encoding="utf-8")
            block(panel, "Text files").locator('input[type="file"]').first.set_input_files(
                str(text))
            expect(panel).to_contain_text("stories.txt")
            panel.get_by_role("button", name="Build the language model").click()
            expect(panel).to_contain_text("Language model community: word 3-gram")
            expect(panel).to_contain_text("stories.txt: ")
            expect(panel.get_by_role("combobox", name="Language model")).to_have_value(
                "community")
            expect(panel.get_by_role("combobox", name="Run")).to_have_value(run)
            panel.get_by_role("button", name="Tune on dev").click()
            expect(panel).to_contain_text(f"community with run {run}: LM weight (alpha)")
            expect(block(panel, "Greedy against the language model")).to_contain_text("test")
            expect(block(panel, "Language models of this workspace")).to_contain_text(run)
            finish_step("5. Language model", panel)

            panel = open_step("6. Evaluate")
            expect(panel.get_by_role("combobox", name="Run")).to_have_value(run)
            # Tuning scored test both ways: both reports are there already. (Pressing
            # Evaluate here would redraw the same text: nothing to wait for, so the next
            # choice's answer could come first. The button is pressed below, on dev.)
            expect(panel).to_contain_text(f"test split of run {run}: WER")
            expect(block(panel, "Utterances, worst first")).to_contain_text("clips__qu_")
            panel.get_by_role("combobox", name="Decoding").click()
            page.get_by_role("option", name="community").click()
            expect(panel).to_contain_text("with the language model community (word LM")
            panel.get_by_role("radio", name="dev").click()
            expect(panel).to_contain_text("has not been evaluated on dev with the language "
                                          "model community")
            panel.get_by_role("button", name="Evaluate", exact=True).click()
            expect(panel).to_contain_text(f"dev split of run {run}, ")
            expect(block(panel, "Utterances, worst first")).to_contain_text(
                "with LM (differences)")
            finish_step("6. Evaluate", panel)

            panel = open_step("7. Try it")
            expect(panel.get_by_role("combobox", name="Run")).to_have_value(run)
            expect(panel.get_by_role("button", name="Transcribe")).to_be_visible()
            expect(panel).to_contain_text("Recording")
            finish_step("7. Try it", panel)

            panel = open_step("8. Export")
            expect(panel.get_by_role("combobox", name="Run")).to_have_value(run)
            panel.get_by_role("button", name="Prepare the model zip").click()
            expect(panel.get_by_text(f"Download {run}-model.zip")).to_be_visible()
            # A long action shows what it does while it runs, and cannot be started twice.
            panel.get_by_role("button", name="Prepare an ONNX model for CPUs").click()
            busy = panel.get_by_role("button", name="Preparing the ONNX model...")
            expect(busy).to_be_disabled()
            expect(panel).to_contain_text(f"Preparing the ONNX model of run {run}")
            expect(panel.get_by_text(f"Download {run}-onnx-int8.zip")).to_be_visible()
            expect(panel.get_by_role("button", name="Prepare an ONNX model for CPUs")
                   ).to_be_enabled()
            expect(panel).to_contain_text(f"Prepared {run}-onnx-int8.zip (")
            finish_step("8. Export", panel)

            panel = open_step("9. Untranscribed")
            expect(panel).to_contain_text("Untranscribed: none yet")
            field = tmp_path / "field recording.wav"
            sf.write(field, recording(demo_clips(demo_corpus, 100, 8)), 16000)
            block(panel, "Untranscribed recordings (audio files or a zip)").locator(
                'input[type="file"]').first.set_input_files(str(field))
            expect(panel).to_contain_text("field recording.wav")
            panel.get_by_role("button", name="Add the recordings").click()
            pieces = panel.get_by_text(re.compile(r"^\d+ pieces kept"))
            expect(pieces.first).to_be_visible()
            expect(panel).to_contain_text("from 1 recording(s)")
            expect(panel).to_contain_text(re.compile(r"Untranscribed: [\d.]+ min in \d+ pieces"))
            expect(block(panel, "Runs, on the same dev and test")).to_contain_text(run)
            expect(panel.get_by_role("combobox", name="Run that transcribes")).to_have_value(run)
            finish_step("9. Untranscribed", panel)

            # Every step again at a laptop's 1280x720 (the page was drawn at 1400 px wide).
            page.set_viewport_size(LAPTOP)
            for name in STEPS:
                finish_step(name, open_step(name), suffix="-1280x720")

            # The toast check above sees errors: a step pressed too early shows one.
            panel = open_step("1. Data")
            panel.get_by_role("button", name="Upload", exact=True).click()
            expect(error_toasts(page)).to_contain_text("Choose the files to upload first")
            assert not page_errors, page_errors
        finally:
            browser.close()

    names = sorted(p.name for p in screenshots[0].iterdir())
    assert "2-check.png" in names and "4-train-1280x720.png" in names, names
    assert len(names) == 2 * len(STEPS), names
    assert all((screenshots[0] / n).stat().st_size > 20_000 for n in names)  # not blank


def imported_minutes(ws_root: Path) -> float:
    from workbench.manifest import read_manifest

    return sum(u.duration for split in ("train", "dev", "test")
               for u in read_manifest(ws_root / "manifests" / f"{split}.jsonl")) / 60


def community_text(ws_root: Path) -> str:
    """Sentences made of the training transcripts' words, none of them a dev or test
    transcript: what a community's text would give the language model."""
    from workbench.manifest import read_manifest

    words = sorted({w for u in read_manifest(ws_root / "manifests" / "train.jsonl")
                    for w in u.text.split()})
    return "\n".join(" ".join(words[i:i + 5]) for i in range(0, len(words), 3)) + "\n"


def block(panel, label: str):
    """The innermost component block whose text holds ``label`` (e.g. a table's label)."""
    return panel.locator(".block").filter(has_text=label).last


def error_toasts(page):
    return page.locator('[data-testid="toast-body"].error')


def no_error_toast(page) -> None:
    toasts = error_toasts(page)
    assert toasts.count() == 0, toasts.all_inner_texts()
