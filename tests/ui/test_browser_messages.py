"""Reasons and empty states as a linguist sees them: headless chromium at 1280x720.

A workspace whose import set a row aside (its audio file is missing) and whose check set
clips aside (longer than the limit) is served; the Data and Check tables must show the file
as uploaded, the plain reason and what to do inside the table's visible box (no column cut
off, no horizontal scrolling), and no server path anywhere in the page. Then a new, empty
workspace is created from the page: no step may show an "Error" badge or an error toast,
and its empty tables show their real headers. Screenshots of Data, Check, Alphabet and
Evaluate go where ``WORKBENCH_SCREENSHOTS`` says (see ``tests/ui/test_browser.py``).
"""

from __future__ import annotations

import csv
import shutil
import zipfile
from pathlib import Path

import pytest

from tests.conftest import make_subset
from tests.ui.conftest import free_port
from tests.ui.test_browser import (
    CHROMIUM,
    CHROMIUM_ARGS,
    TIMEOUT_MS,
    block,
    error_toasts,
    require_browser,
    screenshots,  # noqa: F401 - a fixture
)
from ui import uploads
from ui.app import ServeOptions, serve
from ui.steps.reasons import reason_for
from ui.workspaces import WorkspaceRoot
from workbench.audit import AuditOptions, run_audit
from workbench.vocab import build_workspace_vocab
from workbench.workspace import Workspace

WORKSPACE = "runasimi"
MISSING = "clips/chinkasqa.wav"  # named by the table, not in the upload
VIEWPORT = {"width": 1280, "height": 720}
STEPS = ("1. Data", "2. Check", "3. Alphabet", "4. Train", "5. Language model", "6. Evaluate",
         "7. Try it", "8. Export", "9. Untranscribed")


@pytest.fixture
def flagged_root(demo_corpus, tmp_path) -> WorkspaceRoot:
    """A root whose default workspace was imported from an uploaded zip (one row set aside)
    and checked with a 2.5 s limit (clips set aside), with a vocabulary."""
    corpus = make_subset(demo_corpus, tmp_path / "corpus", 16)
    with open(corpus / "metadata.csv", "a", encoding="utf-8", newline="") as table:
        csv.writer(table).writerow([MISSING, "mana kanchu", "spk"])
    archive = tmp_path / "upload" / "rimaykuna.zip"
    archive.parent.mkdir()
    with zipfile.ZipFile(archive, "w") as zipped:
        for path in sorted(corpus.rglob("*")):
            zipped.write(path, path.relative_to(corpus).as_posix())
    ws = Workspace.at(tmp_path / "root" / WORKSPACE)
    ws.root.mkdir(parents=True)
    name = uploads.stage_upload(ws, [archive])
    uploads.import_uploads(ws, [name], uploads.ImportOptions())
    run_audit(ws, options=AuditOptions(max_duration=2.5))
    build_workspace_vocab(ws)
    return WorkspaceRoot.create(tmp_path / "root", ws.root)


def test_reasons_in_view_and_no_error_on_an_empty_workspace(flagged_root, screenshots,  # noqa: F811
                                                            tmp_path):
    sync_playwright = require_browser()
    from playwright.sync_api import expect

    expect.set_options(timeout=TIMEOUT_MS)
    app = serve(flagged_root, ServeOptions(port=free_port()), prevent_thread_lock=True,
                quiet=True)
    try:
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch_persistent_context(
                str(tmp_path / "chromium-profile"), executable_path=str(CHROMIUM),
                headless=True, args=CHROMIUM_ARGS, viewport=VIEWPORT)
            try:
                page = browser.new_page()
                page.set_default_timeout(TIMEOUT_MS)
                page.goto(app.local_url)
                _flagged_workspace(page, expect, screenshots, flagged_root)
                _empty_workspace(page, expect)
            finally:
                browser.close()
    finally:
        app.close()
    # The assertions are in the two walks above (Playwright's expect); the screenshots they
    # took are the page as drawn, not blank.
    shots = sorted(screenshots[0].glob("*.png"))
    assert [p.name for p in shots] == ["1-data.png", "2-check.png", "3-alphabet.png",
                                       "6-evaluate.png"], shots
    assert all(p.stat().st_size > 20_000 for p in shots)


def _flagged_workspace(page, expect, shots, root: WorkspaceRoot) -> None:
    expect(page.get_by_role("combobox", name="Workspace")).to_have_value(WORKSPACE)
    panel = _open_step(page, expect, "1. Data")
    issues = block(panel, "Set aside during the import")
    # The file as uploaded, the plain reason and what to do lead; the code comes last; no
    # column is cut off.
    _in_view(page, expect, issues, "metadata.csv:")
    _in_view(page, expect, issues, reason_for("row_without_audio").reason)
    _in_view(page, expect, issues, reason_for("row_without_audio").todo)
    _in_view(page, expect, issues, "row_without_audio")
    _shoot(page, shots, "1-data.png")

    panel = _open_step(page, expect, "2. Check")
    set_aside = block(panel, "Set aside or flagged, with the reason")
    expect(set_aside).to_contain_text("clips__qu_")
    _in_view(page, expect, set_aside, reason_for("too_long").reason)
    _in_view(page, expect, set_aside, reason_for("row_without_audio").reason)
    _in_view(page, expect, set_aside, reason_for("too_long").todo)
    _in_view(page, expect, set_aside, "too_long")  # the code, last column
    expect(panel).to_contain_text(f"{reason_for('too_long').short} (")
    _shoot(page, shots, "2-check.png")

    panel = _open_step(page, expect, "3. Alphabet")
    expect(panel.locator(".wb-alphabet .wb-chip").first).to_be_visible()
    _shoot(page, shots, "3-alphabet.png")
    panel = _open_step(page, expect, "6. Evaluate")
    expect(panel).to_contain_text("No run has a model yet")
    _shoot(page, shots, "6-evaluate.png")

    text = page.locator("body").inner_text()
    for folder in {str(root.root), str(root.root.resolve()), "/tmp/"}:
        assert folder not in text, f"a server path is shown: {folder}"


def _empty_workspace(page, expect) -> None:
    page.get_by_label("New workspace").fill("Māori ngā kōrero")
    page.get_by_role("button", name="Create", exact=True).click()
    expect(page.get_by_role("combobox", name="Workspace")).to_have_value("Māori ngā kōrero")
    headers = {"1. Data": ("Set aside during the import", "what to do"),
               "2. Check": ("Set aside or flagged, with the reason", "what to do"),
               "3. Alphabet": ("Labels in train, with counts", "code points"),
               "5. Language model": ("Language models of this workspace", "dev OOV"),
               "6. Evaluate": ("Utterances, worst first", "differences"),
               "9. Untranscribed": ("Runs, on the same dev and test", "test CER")}
    for step in STEPS:
        panel = _open_step(page, expect, step)
        page.wait_for_timeout(300)  # the tab's refresh has answered
        if step in headers:
            label, header = headers[step]
            found = block(panel, label).get_by_text(header, exact=True)
            expect(found.filter(visible=True).first).to_be_visible()
        assert error_toasts(page).count() == 0, error_toasts(page).all_inner_texts()
        badges = page.get_by_text("Error", exact=True)
        assert not any(b.is_visible() for b in badges.all()), f"an Error badge in {step}"
    expect(_open_step(page, expect, "2. Check")).to_contain_text("Import data first")


def _open_step(page, expect, name: str):
    page.get_by_role("tab", name=name).click()
    expect(page.get_by_role("tab", name=name)).to_have_attribute("aria-selected", "true")
    return page.locator('[role="tabpanel"]:visible').first  # a step's, not a sub-tab's


def _in_view(page, expect, table, text: str, *, whole_table: bool = True) -> None:
    """``text`` is in a cell drawn whole inside the table's block; ``whole_table``: and no
    column is cut off (the table does not scroll sideways)."""
    cell = table.get_by_role("gridcell").filter(has_text=text, visible=True).first
    cell.scroll_into_view_if_needed()
    expect(cell).to_be_visible()
    box, frame = cell.bounding_box(), table.bounding_box()
    assert box and frame and box["width"] > 20
    assert frame["x"] - 1 <= box["x"] and box["x"] + box["width"] <= frame["x"] + frame["width"] + 1
    if not whole_table:
        return
    sideways = cell.evaluate("""cell => {
        for (let el = cell.parentElement; el && !el.classList.contains('block');
             el = el.parentElement) {
            if (el.scrollWidth > el.clientWidth + 2 && getComputedStyle(el).overflowX !== 'visible')
                return el.scrollWidth - el.clientWidth;
        }
        return 0; }""")
    assert sideways == 0, f"the table scrolls sideways by {sideways} px; {text!r} may be cut off"


def _shoot(page, folders: list[Path], name: str) -> None:
    page.screenshot(path=str(folders[0] / name), full_page=True)
    for folder in folders[1:]:
        shutil.copy(folders[0] / name, folder / name)
