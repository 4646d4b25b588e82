"""What the page keeps, in Chromium: the open workspace and step across a reload and a restart
of the server, a running training shown on arrival, the Model box following the run, a
refused Start for a model that is not here, and workspace names in any script.

Uses the system's chromium through Playwright like ``test_browser.py`` (skipped without it on
a developer's machine, failing under CI).
"""

from __future__ import annotations

import re

import pytest

from tests.conftest import private_copy
from tests.ui.conftest import free_port
from tests.ui.test_browser import (
    CHROMIUM,
    CHROMIUM_ARGS,
    LOCAL_HOSTS,
    TIMEOUT_MS,
    error_toasts,
    no_error_toast,
)
from ui.app import MEMORY_KEY, ServeOptions, serve
from ui.workspaces import WorkspaceRoot

WORKSPACE = "quechua"
# A training that goes on for the whole test (stopped at its end), one thread.
LONG_TRAINING = {"optim.max_steps": 100_000, "run.threads": 1, "run.eval_every": 100_000,
                 "data.max_batch_seconds": 4.0}


@pytest.fixture
def root_with_data(ui_prepared, tmp_path, browser_api) -> WorkspaceRoot:
    """A served root (no default workspace) holding one workspace with data and vocabulary."""
    from workbench.vocab import build_workspace_vocab

    ws = private_copy(ui_prepared, tmp_path / "root" / WORKSPACE)
    build_workspace_vocab(ws)
    return WorkspaceRoot.create(tmp_path / "root")


@pytest.fixture
def browser_api():
    from tests.ui.test_browser import require_browser

    return require_browser()


def open_browser(playwright, tmp_path, width: int = 1280, height: int = 720):
    """A persistent chromium profile (its local storage survives reloads), offline."""
    from urllib.parse import urlsplit

    def only_local(route):
        host = urlsplit(route.request.url).hostname or ""
        if route.request.url.startswith(("data:", "blob:")) or host in LOCAL_HOSTS:
            route.continue_()
        else:
            route.abort()

    browser = playwright.chromium.launch_persistent_context(
        str(tmp_path / "chromium-profile"), executable_path=str(CHROMIUM), headless=True,
        args=CHROMIUM_ARGS, viewport={"width": width, "height": height})
    browser.route("**/*", only_local)
    page = browser.new_page()
    page.set_default_timeout(TIMEOUT_MS)
    return browser, page


def choose_workspace(page, title: str) -> None:
    box = page.get_by_role("combobox", name="Workspace")
    box.click()
    page.get_by_role("option", name=title).click()


def open_step(page, name: str):
    from playwright.sync_api import expect

    page.get_by_role("tab", name=name).click()
    expect(page.get_by_role("tab", name=name)).to_have_attribute("aria-selected", "true")
    return page.locator('[role="tabpanel"]:visible').first  # a step's, not a sub-tab's


def remembered(page) -> str | None:
    """The page's memory as the browser stores it (encrypted by gradio; compared, not read)."""
    return page.evaluate("key => localStorage.getItem(key)", MEMORY_KEY)


def wait_until_remembered(page, before: str | None) -> None:
    """Wait for the round trip that stores a tab click in the browser's memory: a reload
    sooner (a busy machine) would restore the step before it."""
    page.wait_for_function("([key, before]) => localStorage.getItem(key) !== before",
                           arg=[MEMORY_KEY, before], timeout=TIMEOUT_MS)


def test_workspace_step_and_training_survive_reload_and_restart(browser_api, root_with_data,
                                                                tmp_path):
    from playwright.sync_api import expect

    from ui import jobs
    from ui.steps import train as training

    expect.set_options(timeout=TIMEOUT_MS)
    ws = root_with_data.resolve(WORKSPACE)
    port = free_port()
    app = serve(root_with_data, ServeOptions(port=port), prevent_thread_lock=True, quiet=True)
    started = None
    try:
        with browser_api() as playwright:
            browser, page = open_browser(playwright, tmp_path)
            page.goto(app.local_url)
            expect(page.get_by_text("Choose a workspace above")).to_be_visible()
            choose_workspace(page, WORKSPACE)
            expect(page.get_by_text("Workspace: quechua")).to_be_visible()
            before = remembered(page)
            open_step(page, "4. Train")
            wait_until_remembered(page, before)
            # A training started now (by the page's job machinery) with the tiny model.
            started = training.start_training(ws, "tiny", "10min", LONG_TRAINING,
                                              root_with_data.models_folder)

            for restart in (False, True):
                if restart:  # the server goes away and comes back on the same port
                    page.goto("about:blank")
                    app.close()
                    app = serve(root_with_data, ServeOptions(port=port),
                                prevent_thread_lock=True, quiet=True)
                    page.goto(app.local_url)
                else:
                    page.reload()
                expect(page.get_by_role("combobox", name="Workspace")).to_have_value(WORKSPACE)
                expect(page.get_by_role("tab", name="4. Train")).to_have_attribute(
                    "aria-selected", "true")
                panel = page.locator('[role="tabpanel"]:visible').first
                # The running job is shown on arrival, at the top and in the step...
                expect(page.get_by_text("started by this page")).to_be_visible()
                expect(panel.get_by_role("combobox", name="Model")).to_have_value(
                    re.compile("^tiny "))
                expect(panel).to_contain_text("Training")
                # ...and the status words render as text (no emoji font needed).
                expect(page.locator(".wb-badge", has_text="training").first).to_be_visible()
                no_error_toast(page)
            page.screenshot(path=str(tmp_path / "train-after-restart.png"), full_page=True)
            browser.close()
    finally:
        if started is not None:
            jobs.stop_job(ws, started.job.id)
        app.close()


def test_start_refuses_a_model_that_is_not_here(browser_api, root_with_data, tmp_path,
                                                monkeypatch):
    """Offline, XLS-R (the default) cannot be downloaded: the page says so before Start and
    Start is refused in its words, with no job started."""
    from huggingface_hub import constants
    from playwright.sync_api import expect

    from ui import jobs

    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
    monkeypatch.setattr("torch.cuda.is_available", lambda: False)
    expect.set_options(timeout=TIMEOUT_MS)
    ws = root_with_data.resolve(WORKSPACE)
    app = serve(root_with_data, ServeOptions(port=free_port()), prevent_thread_lock=True,
                quiet=True)
    try:
        with browser_api() as playwright:
            browser, page = open_browser(playwright, tmp_path)
            page.goto(app.local_url)
            choose_workspace(page, WORKSPACE)
            panel = open_step(page, "4. Train")
            model = panel.get_by_role("combobox", name="Model")
            expect(model).to_have_value(re.compile("^xls-r-300m "))
            expect(panel).to_contain_text("Not available")
            expect(panel).to_contain_text("demo-base")
            expect(panel).to_contain_text("No GPU here")
            expect(panel).to_contain_text("315M parameters")
            panel.get_by_role("button", name="Start training").click()
            expect(error_toasts(page)).to_contain_text("Training was not started")
            expect(panel.get_by_role("button", name="Start training")).to_be_enabled()
            assert "--model" not in page.inner_text("body")
            page.screenshot(path=str(tmp_path / "start-refused.png"), full_page=True)
            browser.close()
    finally:
        app.close()
    assert jobs.list_jobs(ws) == []


def test_a_workspace_name_with_any_letters(browser_api, tmp_path):
    from playwright.sync_api import expect

    expect.set_options(timeout=TIMEOUT_MS)
    root = WorkspaceRoot.create(tmp_path / "root")
    app = serve(root, ServeOptions(port=free_port()), prevent_thread_lock=True, quiet=True)
    try:
        with browser_api() as playwright:
            browser, page = open_browser(playwright, tmp_path)
            page.goto(app.local_url)
            page.get_by_role("textbox", name="New workspace").fill("Māori project")
            page.get_by_role("button", name="Create", exact=True).click()
            expect(page.get_by_text("Workspace: Māori project")).to_be_visible()
            box = page.get_by_role("combobox", name="Workspace")
            expect(box).to_have_value("Māori project")
            no_error_toast(page)
            page.reload()  # remembered, and listed by its name
            expect(box).to_have_value("Māori project")
            browser.close()
    finally:
        app.close()
    assert (tmp_path / "root" / "Māori-project").is_dir()
    assert root.choices() == [("Māori project", "Māori-project")]
