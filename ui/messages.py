"""Messages in the page's words: no command lines, no option flags, no server paths.

The library's messages are written for the command line ("Run `workbench vocab -w WS`
first", "choose one with --format"). Every message the page shows goes through
:func:`for_page`: a :class:`~workbench.errors.WorkbenchError` that carries its own page
wording (``page=``) is shown in it; otherwise each command is replaced by the step of the
page that does the same and each option by the field that sets it. ``ui.workspaces.page_text``
then takes the server's folders out.
"""

from __future__ import annotations

import html
import re

from data_recipes.options import ImportOptions, flag, page_fields
from workbench.errors import WorkbenchError

# `workbench <command> ...` -> the step of the page that does it.
COMMAND_STEPS = {
    "prepare": "step 1, Data (upload and import)",
    "audit": "step 2, Check (Run the check)",
    "vocab": "step 3, Alphabet (Build the vocabulary)",
    "train": "step 4, Train",
    "lm": "step 5, Language model",
    "evaluate": "step 6, Evaluate",
    "transcribe": "step 7, Try it",
    "export": "step 8, Export",
}


def import_option_fields(cls: type = ImportOptions) -> dict[str, str]:
    """Each import option's CLI flag -> its field on the page (``data_recipes.options``).

    A flag that turns an option off is the box unticked."""
    def field_words(item) -> str:
        label = item.metadata["label"]
        if item.metadata["widget"] != "check":
            return f"the '{label}' import option"
        return f"'{label}' unticked" if item.default else f"'{label}'"

    return {flag(f): field_words(f) for f in page_fields(cls)}


# Options -> the page's field (a whole flag is matched, so --speaker never eats
# --speaker-from-tier).
OPTION_FIELDS = {
    "--format": "the 'Format' import option",
    **import_option_fields(),
    "--seed": "the 'Seed of the train/dev/test split' option",
    "--model": "the Model choice",
    "--preset": "the Preset choice",
    "--max-seconds": "'Longest clip kept'",
    "--include-excluded": "the evaluation options",
}
_RUN_COMMAND = re.compile(r"\b[Rr]un `workbench (\w+)[^`]*`")
_COMMAND = re.compile(r"`workbench (\w+)[^`]*`")
_OPTION_VALUE = re.compile(r"(--[a-z][a-z-]*)(?: [A-Z][A-Z_]*)?\b")
_COMMAND_LINE_ONLY = re.compile(r"; on the command line[^.]*")  # advice the page cannot use


def for_page(message: str | BaseException) -> str:
    """``message`` (or an error's message) in the page's words."""
    if isinstance(message, WorkbenchError):
        text = message.for_page()
    else:
        text = str(message)
    text = _COMMAND_LINE_ONLY.sub("", text)
    text = _RUN_COMMAND.sub(lambda m: f"{'G' if m.group()[0] == 'R' else 'g'}o to "
                                      f"{_step(m.group(1))}", text)
    text = _COMMAND.sub(lambda m: _step(m.group(1)), text)
    return _OPTION_VALUE.sub(lambda m: OPTION_FIELDS.get(m.group(1), m.group(0)), text)


def _step(command: str) -> str:
    return COMMAND_STEPS.get(command, f"the command line (`workbench {command}`)")


BADGE_KINDS = {"done": "done", "ready": "done", "to do": "todo", "training": "busy",
               "working": "busy"}  # anything else: a note (amber)


def badge(word: str) -> str:
    """A status word drawn as a small coloured label (``ui.app.CSS``: ``wb-badge``).

    Words, not emoji: every font draws them and every screen reader reads them; where the
    page's styles do not apply they are still plain text.
    """
    kind = BADGE_KINDS.get(word, "note")
    return f'<span class="wb-badge wb-{kind}">{html.escape(word)}</span>'
