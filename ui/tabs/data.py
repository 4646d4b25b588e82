"""Step 1, Data: upload sources, choose how to read them, import, see what came in."""

from __future__ import annotations

import html
import itertools
from dataclasses import Field, dataclass

import gradio as gr

from data_recipes import READERS
from data_recipes.options import ImportOptions, page_fields
from ui import tempfiles, uploads
from ui.messages import badge
from ui.steps.data import (
    ISSUE_COLUMNS,
    SPLIT_COLUMNS,
    data_summary,
    import_summary_markdown,
    issues_frame,
    split_frame,
)
from ui.tabs.common import Context, shows_errors
from workbench.workspace import Workspace

AUTOMATIC = ("(automatic)", "")
INTRO = """Upload **one zip archive** of a corpus folder, or **audio files together with their
transcripts**: a CSV/TSV table (columns such as `file_name,transcription,speaker`), ELAN
`.eaf` files or Praat `.TextGrid` files. Supported sources: an audiofolder
(`metadata.csv` beside the audio), CSV/TSV tables, ELAN, TextGrid, Common Voice and Kaldi
folders and Hugging Face datasets written by `save_to_disk` (zipped). Uploads are kept in
the workspace; importing replaces the workspace's data with the uploads you choose."""


def build(ctx: Context) -> None:
    """The Data tab."""
    with gr.Tab("1. Data") as tab:
        gr.Markdown(INTRO)
        files = gr.File(label="Files to upload", file_count="multiple", type="filepath")
        upload_button = gr.Button("Upload", variant="primary")
        upload_info = gr.Markdown()
        with gr.Accordion("Import options", open=True):
            chosen = gr.Dropdown(label="Uploads to import", multiselect=True, choices=[],
                                 value=None, allow_custom_value=True,
                                 info="newest first; several are imported together")
            fmt = gr.Dropdown(label="Format", value="",
                              choices=[("detect automatically", ""), *[(n, n) for n in READERS]])
            reading = option_widgets()
            seed = gr.Number(label="Seed of the train/dev/test split", value=0, precision=0)
        import_button = gr.Button("Import", variant="primary")
        summary = gr.Markdown()
        splits = gr.Dataframe(label="Imported, per split", headers=SPLIT_COLUMNS,
                              interactive=False)
        issues = gr.Dataframe(label="Set aside during the import", headers=ISSUE_COLUMNS,
                              interactive=False, wrap=True,
                              column_widths=["15%", "25%", "27%", "23%", "10%"])

    option_outputs = reading.outputs()

    @shows_errors
    def upload(name: str, files: list[str] | None):
        ws = ctx.ws(name)
        upload_name = uploads.stage_upload(ws, files or [])
        tempfiles.remove_gradio_copies(files or [])  # kept in the workspace now
        names = uploads.list_uploads(ws)
        return (_describe(ws, [upload_name]), gr.Dropdown(choices=names, value=[upload_name]),
                *_options(reading, ws, [upload_name], ""), None)

    def empty_box(_name: str, files: list[str] | None):
        """A workspace was opened: files picked but not uploaded are dropped, here and on
        the server."""
        tempfiles.remove_gradio_copies(files or [])
        return None

    @shows_errors
    def options(name: str, selected: list[str], fmt: str):
        ws = ctx.ws(name)
        return (_describe(ws, selected or []), *_options(reading, ws, selected or [], fmt))

    @shows_errors
    def import_data(name: str, selected: list[str], fmt: str = "", seed: float = 0,
                    **values):
        ws = ctx.ws(name)
        choice = uploads.ImportOptions.from_values(values, fmt=fmt or None,
                                                   seed=int(seed or 0))
        result = uploads.import_uploads(ws, selected or [], choice)
        _, splits_now, issues_now = data_summary(ws)
        return import_summary_markdown(result), splits_now, issues_now

    def refresh(name: str):
        if not name:
            return ("", gr.Dropdown(choices=[], value=None), "", split_frame({}),
                    issues_frame([]), *_options(reading, None, [], ""))
        ws = ctx.ws(name)
        names = uploads.list_uploads(ws)
        text, splits_now, issues_now = data_summary(ws)
        selected = names[:1]
        return (_describe(ws, selected), gr.Dropdown(choices=names, value=selected or None), text,
                splits_now, issues_now, *_options(reading, ws, selected, ""))

    event = ctx.action(upload_button, upload, [ctx.workspace, files],
                       [upload_info, chosen, *option_outputs, files], busy="Uploading...",
                       api_name="upload")
    ctx.then_overview(event)
    ctx.on_workspace(empty_box, [files], [files])
    for trigger in (chosen.input, fmt.input):
        trigger(options, inputs=[ctx.workspace, chosen, fmt],
                outputs=[upload_info, *option_outputs], api_visibility="private")
    event = ctx.action(
        import_button, import_data,
        [ctx.workspace, chosen, fmt, seed], [summary, splits, issues], busy="Importing...",
        api_name="import_data", inputs_kwargs=reading.widgets)
    ctx.then_overview(event)
    ctx.register(tab, refresh, [upload_info, chosen, summary, splits, issues, *option_outputs])


@dataclass
class OptionWidgets:
    """The import options' widgets, made from ``data_recipes.options`` (one per field).

    Consecutive options read by the same formats share a row, shown only when one of those
    formats is detected or chosen; a ``choice`` option is a dropdown of what the chosen
    uploads hold (the ``SourceInfo`` list its ``choices`` metadata names).
    """

    widgets: dict[str, gr.components.Component]  # field name -> widget
    rows: list[tuple[frozenset[str], gr.Row]]  # each row, and the formats it shows for
    choices: dict[str, str]  # choice field name -> SourceInfo attribute

    def outputs(self) -> list:
        """What a redraw of the options updates: the rows, then the choice dropdowns."""
        return [row for _, row in self.rows] + [self.widgets[n] for n in self.choices]

    def shown(self, formats: set[str]) -> list[bool]:
        """Which rows show for sources of ``formats``."""
        return [bool(row_formats & formats) for row_formats, _ in self.rows]


def option_widgets(cls: type = ImportOptions) -> OptionWidgets:
    """One widget per import option of ``cls`` that the page shows (inside a Blocks)."""
    widgets, rows = {}, []
    for formats, items in itertools.groupby(page_fields(cls),
                                            key=lambda f: f.metadata["formats"]):
        with gr.Row(visible=False) as row:
            for item in items:
                widgets[item.name] = _widget(item)
        rows.append((frozenset(formats), row))
    choices = {f.name: f.metadata["choices"] for f in page_fields(cls)
               if f.metadata["widget"] == "choice"}
    return OptionWidgets(widgets, rows, choices)


def _widget(item: Field) -> gr.components.Component:
    label, info, kind = item.metadata["label"], item.metadata["help"], item.metadata["widget"]
    if kind == "check":
        return gr.Checkbox(label=label, value=item.default, info=info)
    if kind == "text":
        return gr.Textbox(label=label, value="", info=info)
    return gr.Dropdown(label=label, choices=[AUTOMATIC], value="", info=info,
                       allow_custom_value=True)


def _describe(ws: Workspace, names: list[str]) -> str:
    """Markdown listing what the chosen uploads hold."""
    if not names:
        return "No upload chosen yet."
    lines = []
    for name in names:
        info = uploads.inspect_upload(ws, name)
        lines.append(f"**Upload {name}**: {len(info.files)} file(s)")
        for source in info.sources:
            what = (f"read as **{source.fmt}**" if source.fmt
                    else f"{badge('problem')} {html.escape(source.problem)}")
            lines.append(f"- `{html.escape(source.label)}`: {what}")
    return "\n".join(lines)


def _options(reading: OptionWidgets, ws: Workspace | None, names: list[str],
             fmt: str) -> tuple:
    """Visibility and choices of the import options for the chosen uploads."""
    infos = [uploads.inspect_upload(ws, n) for n in names] if ws is not None else []
    formats = {fmt} if fmt else {f for info in infos for f in info.formats}

    def values(attribute: str) -> list[str]:
        seen: dict[str, None] = {}
        for info in infos:
            seen.update(dict.fromkeys(info.choices(attribute)))
        return list(seen)

    def dropdown(choices: list[str]) -> gr.Dropdown:
        return gr.Dropdown(choices=[AUTOMATIC, *[(c, c) for c in choices]], value="")

    return (*[gr.Row(visible=shown) for shown in reading.shown(formats)],
            *[dropdown(values(attribute)) for attribute in reading.choices.values()])
