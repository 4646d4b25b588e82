"""The page's words: commands become steps, options become fields, errors keep page wording,
status words are labels, and a long action does not run twice at once."""

import threading

import gradio as gr
import pytest

from ui.messages import badge, for_page
from ui.tabs.common import exclusive
from workbench.errors import WorkbenchError


@pytest.mark.parametrize(("cli", "page"), [
    ("No data yet. Run `workbench prepare SOURCE -w /srv/ws` first.",
     "No data yet. Go to step 1, Data (upload and import) first."),
    ("build it with `workbench vocab -w WS`", "build it with step 3, Alphabet (Build the "
                                              "vocabulary)"),
    ("or run `workbench audit -w WS` again", "or go to step 2, Check (Run the check) again"),
    ("choose one with --format (csv, tsv)", "choose one with the 'Format' import option "
                                            "(csv, tsv)"),
    ("choose it with --tier NAME", "choose it with the 'Tier' import option"),
    ("give --speaker-column or --speaker-from-tier",
     "give the 'Speaker column' import option or 'Use the tier name as the speaker'"),
    ("put it beside the TextGrid; on the command line --media names it.",
     "put it beside the TextGrid."),
    ("the vowels /a/ and -e- stay", "the vowels /a/ and -e- stay"),
])
def test_command_line_words_become_the_pages(cli, page):
    assert for_page(cli) == page


def test_an_error_with_its_own_page_wording_is_shown_in_it():
    err = WorkbenchError("pass --model DIR", page="Choose demo-base.")
    assert for_page(err) == "Choose demo-base." and str(err) == "pass --model DIR"
    assert for_page(WorkbenchError("see --format")) == "see the 'Format' import option"


def test_status_words_are_labels_not_emoji():
    assert badge("done") == '<span class="wb-badge wb-done">done</span>'
    assert 'class="wb-badge wb-todo">to do<' in badge("to do")
    assert "wb-note" in badge("problem") and "&lt;b&gt;" in badge("<b>")


def test_a_long_action_is_refused_while_it_runs_for_the_same_workspace():
    started, release = threading.Event(), threading.Event()
    calls = []

    def work(name: str) -> str:
        calls.append(name)
        started.set()
        release.wait(10)
        return name

    action = exclusive(work, "Prepare the model zip")
    first = threading.Thread(target=action, args=("quechua",))
    first.start()
    assert started.wait(10)
    with pytest.raises(gr.Error, match="“Prepare the model zip” is already running"):
        action("quechua")
    assert action("aymara") == "aymara"  # another workspace is not held up
    release.set()
    first.join(10)
    assert action("quechua") == "quechua"  # free again once it ended
    assert calls == ["quechua", "aymara", "quechua"]
