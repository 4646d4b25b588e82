"""The Data step's import options are made from data_recipes.options, and a Hugging Face
dataset uploaded as a zip is imported like any other source."""

import zipfile

import gradio as gr
import pytest

from data_recipes import hf_dataset
from data_recipes.options import ImportOptions, page_fields
from tests.data_recipes.test_hf_dataset import CLIPS, dataset, write_clips
from tests.data_recipes.test_options import WithDialect
from ui import uploads
from ui.messages import for_page, import_option_fields
from ui.tabs import data
from ui.tabs.common import Context
from ui.workspaces import WorkspaceRoot
from workbench.workspace import Workspace

datasets = pytest.importorskip("datasets")


def data_tab(root: WorkspaceRoot, name: str) -> gr.Blocks:
    with gr.Blocks() as app:
        data.build(Context(root, gr.State(name), gr.Markdown(), gr.Timer(active=False)))
    return app


def inside(widget, row) -> bool:
    """Whether ``widget`` is drawn in ``row`` (Gradio wraps form widgets in a Form)."""
    parent = widget.parent
    while parent is not None and parent is not row:
        parent = parent.parent
    return parent is row


def test_a_new_option_gets_a_widget_and_page_words():
    with gr.Blocks():
        reading = data.option_widgets(WithDialect)
    dialect = reading.widgets["dialect"]
    assert isinstance(dialect, gr.Textbox) and dialect.label == "Dialect"
    assert dialect.info == "the dialect every clip is in"
    shown = dict(zip([frozenset(f) for f, _ in reading.rows], reading.shown({"csv"}),
                     strict=True))
    assert shown[frozenset({"csv"})] and not shown[frozenset({"elan"})]
    assert import_option_fields(WithDialect)["--dialect"] == "the 'Dialect' import option"


def test_the_widgets_show_for_the_formats_their_options_name():
    with gr.Blocks():
        reading = data.option_widgets()
    assert list(reading.widgets) == [f.name for f in page_fields()]
    assert reading.widgets["tier"].label == "Tier"
    assert reading.widgets["use_splits"].value is True  # the readers' default
    for fmt in ("csv", "elan", "textgrid", "hf-dataset", "kaldi"):
        shown_rows = [row for (_, row), shown in zip(reading.rows, reading.shown({fmt}),
                                                     strict=True) if shown]
        visible = {name for name, widget in reading.widgets.items()
                   if any(inside(widget, row) for row in shown_rows)}
        assert visible == {f.name for f in page_fields() if fmt in f.metadata["formats"]}, fmt


def test_the_page_words_for_the_flags_come_from_the_options():
    assert for_page("give --speaker-column or --speaker-from-tier") == (
        "give the 'Speaker column' import option or 'Use the tier name as the speaker'")
    assert for_page("import with --no-source-splits to split here") == (
        "import with 'Keep the source's own train/dev/test split' unticked to split here")
    assert for_page("choose it with --split NAME") == (
        "choose it with the 'Dataset split' import option")


def test_a_zipped_dataset_is_uploaded_inspected_and_imported_with_the_widgets_values(
        tmp_path):
    whole = dataset(write_clips(tmp_path / "wav"))
    folder = tmp_path / "my_ds"
    datasets.DatasetDict({"train": whole.select([0, 1, 2]), "validation": whole.select([3]),
                          "test": whole.select([4])}).save_to_disk(str(folder))
    archive = tmp_path / "my_ds.zip"
    with zipfile.ZipFile(archive, "w") as out:
        for path in sorted(folder.rglob("*")):
            out.write(path, f"my_ds/{path.relative_to(folder)}")
    root = WorkspaceRoot.create(tmp_path / "root")
    ws = Workspace.at(root.root / "lang")
    name = uploads.stage_upload(ws, [archive])
    [source] = uploads.inspect_upload(ws, name).sources
    assert source.fmt == "hf-dataset"
    assert (source.columns, source.splits) == (["audio", "sentence", "speaker_id"],
                                                ["train", "validation", "test"])

    # The Import button's handler, called as the page calls it: widget values by name.
    app = data_tab(root, "lang")
    import_data = next(f for f in app.fns.values() if f.name == "import_data")
    labels = {block.label for block in import_data.inputs}
    assert {f.metadata["label"] for f in page_fields()} <= labels
    values = {f.name: "" for f in page_fields()} | {"use_splits": True,
                                                     "speaker_from_tier": False}
    summary, *_ = import_data.fn("lang", [name], "", 0, **values)
    assert summary.startswith(f"Imported **{len(CLIPS)} utterances**")
    assert {s: [u.text for u in us] for s, us in ws.read_all().items()} == {
        "train": [c[0] for c in CLIPS[:3]], "dev": [CLIPS[3][0]], "test": [CLIPS[4][0]]}
    clips = hf_dataset.clips_folder(ws, source.path)
    assert all(str(clips) in u.source for us in ws.read_all().values() for u in us)

    summary = uploads.import_uploads(ws, [name], uploads.ImportOptions(split="train"))
    assert summary["utterances"] == 3 and isinstance(uploads.ImportOptions(), ImportOptions)
