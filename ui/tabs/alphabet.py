"""Step 3, Alphabet: edit the orthography profile, build the vocabulary, see what it misses."""

from __future__ import annotations

import gradio as gr

from ui.steps import alphabet as steps
from ui.tabs.common import Context, shows_errors
from workbench.text import CODEPOINT, GRAPHEME

INTRO = """How transcripts become the labels the model learns. Apostrophes are kept (in many
orthographies they are letters); look-alikes such as `ʼ ’ ‘` are written as one character.
The vocabulary is built from the **train** split only; characters that appear only in dev or
test are shown in red, rare ones in amber."""
PREVIEW_WIDTHS = ["16%", "28%", "28%", "28%"]  # long transcripts and label lists wrap


UNIT_CHOICES = [("one per character (code point)", CODEPOINT),
                ("one per letter with its marks", GRAPHEME)]


def build(ctx: Context) -> None:
    """The Alphabet tab."""
    defaults = steps.ProfileForm()
    with gr.Tab("3. Alphabet") as tab:
        gr.Markdown(INTRO)
        with gr.Row():
            lowercase = gr.Checkbox(label="Lower-case everything", value=True)
            unicode_form = gr.Radio(["NFC", "NFKC"], value="NFC", label="Unicode form",
                                    info="NFKC also folds ligatures and full-width letters")
            fold = gr.Textbox(label="Write apostrophe look-alikes as", value="'", max_length=1,
                              info="empty: keep ʼ ’ ' ‘ apart")
            distinct = gr.Textbox(label="Look-alikes that are letters of their own",
                                  info="e.g. ʻ for the Hawaiian ʻokina", value="")
        ignore = gr.Textbox(label="Characters to ignore (removed one by one)",
                            value=defaults.ignore,
                            info="punctuation that is not part of the spelling; spaces are "
                                 "word boundaries and cannot be ignored")
        mappings = gr.Dataframe(label="Mappings (replace 'from' by 'to', longest first)",
                                headers=["from", "to"], datatype=["str", "str"], type="array",
                                column_count=2, row_count=3, interactive=True,
                                value=[["", ""]] * 3)
        graphemes = gr.Textbox(label="Letters written with several characters (one label each)",
                               info="separated by spaces, e.g. ch ll ch'", value="")
        unit = gr.Radio(UNIT_CHOICES, value=defaults.label_unit, label="What one label is",
                        info="per character: vowel signs, viramas, tone marks and points are "
                             "labels of their own, shared by every syllable (best for most "
                             "scripts); per letter with its marks: each combination is one "
                             "label, so one never seen in training can never be written")
        build_button = gr.Button("Save and build the vocabulary", variant="primary")
        summary = gr.Markdown()
        alphabet = gr.HTML()
        preview = gr.Dataframe(label="Transcripts before and after (train)", interactive=False,
                               headers=steps.PREVIEW_COLUMNS, wrap=True,
                               column_widths=PREVIEW_WIDTHS)
        with gr.Row():
            counts = gr.Dataframe(label="Labels in train, with counts", interactive=False,
                                  headers=steps.COUNT_COLUMNS, wrap=True, max_height=400)
            unseen = gr.Dataframe(label="In dev/test but not in train (become [UNK])",
                                  headers=steps.UNSEEN_COLUMNS, interactive=False, wrap=True)

    form_inputs = [unicode_form, lowercase, ignore, mappings, graphemes, fold, distinct, unit]
    view_outputs = [summary, alphabet, counts, unseen, preview]

    @shows_errors
    def build_vocab(name: str, unicode_form: str, lowercase: bool, ignore: str,
                    mappings: list | None, graphemes: str, fold: str, distinct: str,
                    label_unit: str = CODEPOINT):
        form = steps.ProfileForm(
            unicode_form=unicode_form, lowercase=bool(lowercase), ignore=ignore or "",
            mappings=tuple(tuple(row) for row in _rows(mappings)), graphemes=graphemes or "",
            fold_apostrophes=fold or "", distinct_letters=distinct or "",
            label_unit=label_unit or CODEPOINT)
        return _view(steps.save_alphabet(ctx.ws(name), form))

    def refresh(name: str):
        if not name:
            return (*_form(steps.ProfileForm()), *_view(steps.empty_view("")))
        ws = ctx.ws(name)
        form = steps.profile_form(ws)
        view = steps.saved_alphabet(ws) if ws.vocab_path.is_file() else None
        if view is None:
            note = ("Import data first (step 1)." if not ws.manifest_path("train").exists()
                    else "No vocabulary yet: check the settings and press **Save and build**.")
            return (*_form(form), *_view(steps.empty_view(note)))
        return (*_form(form), *_view(view))

    event = ctx.action(build_button, build_vocab, inputs=[ctx.workspace, *form_inputs],
                       outputs=view_outputs, busy="Building the vocabulary...",
                       api_name="build_alphabet")
    ctx.then_overview(event)
    ctx.register(tab, refresh, [*form_inputs, *view_outputs])


def _rows(mappings) -> list[list[str]]:
    """Mapping rows from the table widget (a list of lists, or a DataFrame)."""
    if mappings is None:
        return []
    rows = mappings.values.tolist() if hasattr(mappings, "values") else mappings
    return [[str(c or "") for c in row] for row in rows if any(str(c or "") for c in row)]


def _form(form: steps.ProfileForm) -> tuple:
    rows = [list(pair) for pair in form.mappings] + [["", ""]]
    return (form.unicode_form, form.lowercase, form.ignore, rows, form.graphemes,
            form.fold_apostrophes, form.distinct_letters, form.label_unit)


def _view(view: steps.VocabView) -> tuple:
    return view.summary, view.alphabet_html, view.counts, view.unseen, view.preview
