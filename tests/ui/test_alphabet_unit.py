"""Step 3 offers what one label is, saves it in the profile and says what it means."""

from ui.steps import alphabet
from workbench.manifest import Utterance, write_manifest
from workbench.text import load_profile
from workbench.workspace import Workspace


def _hindi_workspace(tmp_path) -> Workspace:
    ws = Workspace.at(tmp_path / "ws")
    syllables = [c + s for c in "कखगचजतदनपमरलसह" for s in ("ा", "ि", "ी", "ु", "े", "ो")]
    for split, texts in {"train": syllables, "dev": ["कम"], "test": ["नल"]}.items():
        write_manifest(ws.manifest_path(split), [
            Utterance(id=f"{split}{i}", audio=f"a/{split}{i}.wav", text=t, split=split,
                      duration=1.0) for i, t in enumerate(texts)])
    return ws


def test_the_label_unit_is_saved_and_its_cost_explained(tmp_path):
    ws = _hindi_workspace(tmp_path)
    assert alphabet.profile_form(ws).label_unit == "codepoint"  # the default
    view = alphabet.save_alphabet(ws, alphabet.ProfileForm(label_unit="grapheme"))
    assert load_profile(ws.profile_path).label_unit == "grapheme"
    assert "one per letter with its marks" in view.summary
    assert "Set label_unit: codepoint" in view.summary  # 84 labels, each seen once
    assert len(view.counts) == 84  # 14 consonants x 6 vowel signs
    view = alphabet.save_alphabet(ws, alphabet.ProfileForm())
    assert "one per character (code point)" in view.summary and "label_unit" not in view.summary
    assert len(view.counts) == 14 + 6  # consonants and vowel signs, shared
    assert alphabet.saved_alphabet(ws).summary == view.summary
