"""Step 7, Try it: upload or record a recording and read what a run's model hears."""

from __future__ import annotations

from pathlib import Path

import gradio as gr

from ui.steps import language_model as lm_steps
from ui.steps import try_it as steps
from ui.steps.try_it import transcribe_recording
from ui.tabs.common import Context, shows_errors
from ui.tempfiles import new_export_folder
from workbench.run import run_names

INTRO = """Upload a recording (any format, sample rate or number of channels; long recordings
are transcribed in overlapping windows) or record one with the microphone, and read the
transcript from the chosen run's best model. The recording you gave last is the one
transcribed. With a language model (step 5) as the **Decoding**, the greedy transcript and
the one with the language model are shown side by side."""


LONG_INTRO = """A long recording (an interview, a story, hours of a session) cut into
utterances at its pauses, each with its times and a confidence; click a row to hear it. The
pauses are found by loudness unless you choose otherwise: a voice detector copes better with
music, and the model's own pauses cut tightest in clean recordings. Download the result as
an ELAN file or a Praat TextGrid (an utterance tier named after the run and a word tier), to
correct in the tool you know; give the recording's own ELAN file or TextGrid to get it back
with those tiers added."""
ALIGN_INTRO = """A recording and its transcript without times (a text file, one utterance a
line, or an ELAN file whose tier has the text): each line gets its start and end. Lines the
recording does not contain, and speech no line covers, are listed. The aligned lines can be
added to the workspace's training data."""


def build(ctx: Context) -> None:
    """The Try it tab."""
    with gr.Tab("7. Try it") as tab:
        gr.Markdown(INTRO)
        with gr.Row():
            run = gr.Dropdown(label="Run", choices=[], value=None, allow_custom_value=True,
                              scale=3)
            decoding = gr.Dropdown(label="Decoding", choices=[lm_steps.GREEDY], scale=2,
                                   value=lm_steps.GREEDY, allow_custom_value=True)
        with gr.Tab("A recording"):
            _short_recording(ctx, run, decoding)
        with gr.Tab("Transcribe a long recording"):
            _long_recording(ctx, run, decoding)
        with gr.Tab("Align a transcript"):
            _alignment(ctx, run)

    def refresh(name: str):
        ws = ctx.ws(name) if name else None
        runs = run_names(ws, with_model=True) if ws else []
        choices = lm_steps.decoding_choices(ws) if ws else [lm_steps.GREEDY]
        return (gr.Dropdown(choices=runs, value=runs[0] if runs else None),
                gr.Dropdown(choices=choices, value=lm_steps.GREEDY))

    ctx.register(tab, refresh, [run, decoding])


def _short_recording(ctx: Context, run: gr.Dropdown, decoding: gr.Dropdown) -> None:
    """Upload or record one recording; its transcript (greedy, and with the LM)."""
    with gr.Row(equal_height=True):
        uploaded = gr.Audio(label="Recording: upload a file", sources=["upload"],
                            type="filepath")
        recorded = gr.Audio(label="Recording: record with the microphone",
                            sources=["microphone"], type="filepath")
    transcribe_button = gr.Button("Transcribe", variant="primary")
    with gr.Row():
        text = gr.Textbox(label="Transcript (greedy: no language model)", lines=4,
                          interactive=False)
        lm_text = gr.Textbox(label="With the language model", lines=4, interactive=False,
                             placeholder="Choose a language model as the Decoding to see "
                                         "its transcript beside the greedy one.")

    @shows_errors
    def transcribe(name: str, run: str | None, recording: str | None = None,
                   microphone: str | None = None, decoding: str | None = None):
        if not run:
            raise gr.Error("Choose a run first (runs appear here once they have a model).")
        lm = lm_steps.chosen_lm(decoding)
        result = transcribe_recording(ctx.ws(name), run, microphone or recording, lm)
        return result if lm else (result, "")

    # One recording at a time: giving one empties the other, so the one given last is used.
    quiet = {"api_visibility": "private", "show_progress": "hidden", "queue": False}
    uploaded.upload(lambda: None, outputs=[recorded], **quiet)
    recorded.stop_recording(lambda: None, outputs=[uploaded], **quiet)
    ctx.action(transcribe_button, transcribe,
               [ctx.workspace, run, uploaded, recorded, decoding], [text, lm_text],
               busy="Transcribing...", api_name="transcribe")


def _long_recording(ctx: Context, run: gr.Dropdown, decoding: gr.Dropdown) -> None:
    """A long recording in timed utterances, each playable; ELAN and Praat downloads."""
    gr.Markdown(LONG_INTRO)
    with gr.Row():
        recording = gr.File(label="Long recording (any audio format)", type="filepath")
        annotations = gr.File(label="Its ELAN file or TextGrid (optional: the tiers are added "
                              "to a copy of it)", type="filepath",
                              file_types=[".eaf", ".TextGrid", ".textgrid"])
    cut_at = gr.Radio(label="Where to cut", choices=list(steps.CUT_CHOICES),
                      value=next(iter(steps.CUT_CHOICES)))
    button = gr.Button("Cut and transcribe", variant="primary")
    summary, table, player, files = _timed_outputs(steps.SEGMENT_COLUMNS, "Utterances",
                                                   "The utterance")
    spans = gr.State([])
    audio = gr.State("")

    @shows_errors
    def cut(name: str, run: str | None, path: str | None, decoding: str | None = None,
            into: str | None = None, cut_at: str | None = None):
        out = new_export_folder()
        result = steps.transcribe_timed(ctx.ws(name), _chosen(run), path, out,
                                        lm_steps.chosen_lm(decoding), into, cut_at)
        return (result.summary, result.table, [str(f) for f in result.files], result.spans,
                str(out / Path(path).name))

    ctx.action(button, cut, [ctx.workspace, run, recording, decoding, annotations, cut_at],
               [summary, table, files, spans, audio], busy="Cutting and transcribing...",
               api_name="transcribe_long")
    _playable(table, spans, audio, player)


def _alignment(ctx: Context, run: gr.Dropdown) -> None:
    """A recording and its untimed transcript aligned; downloads; add to the workspace."""
    gr.Markdown(ALIGN_INTRO)
    with gr.Row():
        recording = gr.File(label="Recording (any audio format)", type="filepath")
        transcript = gr.File(label="Transcript: .txt (one utterance a line) or .eaf",
                             type="filepath", file_types=[".txt", ".eaf"])
    tier = gr.Textbox(label="ELAN tier (only when several tiers have text)", max_lines=1)
    button = gr.Button("Align", variant="primary")
    summary, table, player, files = _timed_outputs(steps.ALIGN_COLUMNS, "Transcript lines",
                                                   "The line")
    add_button = gr.Button("Add the aligned lines to the workspace's training data")
    added = gr.Markdown()
    spans, audio, clips = gr.State([]), gr.State(""), gr.State("")

    @shows_errors
    def align(name: str, run: str | None, path: str | None, text: str | None,
              tier: str = ""):
        out = new_export_folder()
        result = steps.align_transcript(ctx.ws(name), _chosen(run), path, text, out,
                                        tier.strip() or None)
        return (result.summary, result.table, [str(f) for f in result.files], result.spans,
                str(out / Path(path).name), str(result.clips))

    @shows_errors
    def add(name: str, folder: str):
        return steps.add_aligned_clips(ctx.ws(name), folder)

    event = ctx.action(button, align, [ctx.workspace, run, recording, transcript, tier],
                       [summary, table, files, spans, audio, clips], busy="Aligning...",
                       api_name="align")
    event.success(lambda: "", outputs=[added], api_visibility="private",
                  show_progress="hidden", queue=False)
    ctx.then_overview(ctx.action(add_button, add, [ctx.workspace, clips], [added],
                                 busy="Adding...", api_name="add_aligned"))
    _playable(table, spans, audio, player)


def _timed_outputs(headers: list[str], rows: str, one: str) -> tuple:
    """What a timed result shows: a summary, the rows, a player for one row, the files."""
    summary = gr.Markdown()
    table = gr.Dataframe(headers=headers, interactive=False, wrap=True,
                         label=f"{rows} (click one to hear it)")
    player = gr.Audio(label=one, type="numpy", interactive=False)
    files = gr.File(label="ELAN and Praat files", file_count="multiple", interactive=False)
    return summary, table, player, files


def _playable(table: gr.Dataframe, spans: gr.State, audio: gr.State, player: gr.Audio
              ) -> None:
    """Clicking a row of ``table`` plays its stretch of the recording."""

    @shows_errors
    def play(spans: list, audio: str, evt: gr.SelectData):
        values = list(evt.row_value or [])
        number = int(values[0]) if values and str(values[0]).isdigit() else 0
        if not audio or not 0 < number <= len(spans):
            return None
        return steps.play_span(audio, spans[number - 1])

    table.select(play, inputs=[spans, audio], outputs=[player], api_visibility="private",
                 show_progress="minimal")


def _chosen(run: str | None) -> str:
    if not run:
        raise gr.Error("Choose a run first (runs appear here once they have a model).")
    return run
