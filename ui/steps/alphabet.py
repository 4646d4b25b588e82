"""Step 3, Alphabet: the orthography profile as a form, and the vocabulary built from it."""

from __future__ import annotations

import html
from dataclasses import dataclass

import pandas as pd

from ui.messages import badge
from ui.steps import read_json
from workbench.errors import WorkbenchError
from workbench.text import (
    CODEPOINT,
    LEGACY_LABEL_UNIT,
    OrthographyProfile,
    load_profile,
    normalize,
    save_profile,
    tokenize,
)
from workbench.workspace import Workspace

PREVIEW_UTTERANCES = 8  # transcripts shown before/after normalisation
COUNT_COLUMNS = ["label", "count", "code points", "note"]
UNSEEN_COLUMNS = ["split", "label", "count", "code points", "e.g."]
PREVIEW_COLUMNS = ["id", "transcript", "normalised", "labels"]


@dataclass(frozen=True)
class ProfileForm:
    """The orthography profile as the page edits it.

    Attributes:
        unicode_form: "NFC" or "NFKC".
        lowercase: Lower-case transcripts.
        ignore: Characters removed from transcripts (whitespace is dropped).
        mappings: Rows of [from, to]; empty rows are skipped.
        graphemes: Multi-character letters separated by spaces.
        fold_apostrophes: The character apostrophe look-alikes become ("" keeps them apart).
        distinct_letters: Look-alikes that are letters of their own, separated by spaces.
        label_unit: "codepoint" or "grapheme" (what one label is).
    """

    unicode_form: str = "NFC"
    lowercase: bool = True
    ignore: str = ""
    mappings: tuple[tuple[str, str], ...] = ()
    graphemes: str = ""
    fold_apostrophes: str = ""
    distinct_letters: str = ""
    label_unit: str = CODEPOINT


def profile_form(ws: Workspace) -> ProfileForm:
    """The workspace's orthography profile (defaults when it has none) as a form."""
    profile = load_profile(ws.profile_path)
    return ProfileForm(
        unicode_form=profile.unicode_form,
        lowercase=profile.lowercase,
        ignore=profile.ignore,
        mappings=tuple(profile.mappings.items()),
        graphemes=" ".join(profile.graphemes),
        fold_apostrophes=profile.fold_apostrophes or "",
        distinct_letters=" ".join(profile.distinct_letters),
        label_unit=profile.label_unit,
    )


def profile_from_form(form: ProfileForm) -> OrthographyProfile:
    """Build (and validate) a profile from the form.

    Raises:
        WorkbenchError: A setting is invalid; the message names it.
    """
    mappings = {}
    for row in form.mappings:
        source, target = (list(row) + ["", ""])[:2]
        source, target = str(source or ""), str(target or "")
        if source:
            mappings[source] = target
        elif target:
            raise WorkbenchError(f"The mapping to {target!r} has nothing to map from; fill in "
                                 "the 'from' column or clear the row.")
    ignore = "".join(c for c in form.ignore if not c.isspace())
    return OrthographyProfile(
        unicode_form=form.unicode_form or "NFC",
        lowercase=bool(form.lowercase),
        ignore=ignore,
        mappings=mappings,
        graphemes=tuple(form.graphemes.replace(",", " ").split()),
        fold_apostrophes=form.fold_apostrophes.strip() or None,
        distinct_letters=tuple("".join(form.distinct_letters.split())),
        label_unit=form.label_unit or CODEPOINT,
    )


@dataclass(frozen=True)
class VocabView:
    """The vocabulary and what it misses."""

    summary: str
    alphabet_html: str
    counts: pd.DataFrame
    unseen: pd.DataFrame
    preview: pd.DataFrame


def save_alphabet(ws: Workspace, form: ProfileForm) -> VocabView:
    """Save the profile as orthography.yaml, rebuild the vocabulary, and describe it."""
    from workbench.vocab import build_workspace_vocab

    ws.require_prepared()
    profile = profile_from_form(form)
    save_profile(profile, ws.profile_path)
    report = build_workspace_vocab(ws)
    return vocab_view(ws, report.to_dict(), profile)


def saved_alphabet(ws: Workspace) -> VocabView | None:
    """The view of the last vocab_report.json (None when there is none)."""
    data = read_json(ws.vocab_report_path)
    if not isinstance(data, dict) or "train_counts" not in data:
        return None
    return vocab_view(ws, data, load_profile(ws.profile_path))


def empty_view(summary: str) -> VocabView:
    """No vocabulary yet: the note, and the tables with their headers only."""
    return VocabView(summary, "", pd.DataFrame(columns=COUNT_COLUMNS),
                     pd.DataFrame(columns=UNSEEN_COLUMNS), pd.DataFrame(columns=PREVIEW_COLUMNS))


def vocab_view(ws: Workspace, report: dict, profile: OrthographyProfile) -> VocabView:
    """Summary, coloured alphabet, tables and a normalisation preview of a vocabulary report."""
    rare = {s["token"] for s in report["rare"]}
    unseen_rows = [{"split": split, "label": s["token"], "count": s["count"],
                    "code points": s["names"], "e.g.": ", ".join(s["examples"])}
                   for split, stats in report["unseen"].items() for s in stats]
    counts = pd.DataFrame(
        [{"label": s["token"], "count": s["count"], "code points": s["names"],
          "note": f"rare (< {report['rare_threshold']})" if s["token"] in rare else ""}
         for s in report["train_counts"]],
        columns=COUNT_COLUMNS)
    unseen = pd.DataFrame(unseen_rows, columns=UNSEEN_COLUMNS)
    shares = ", ".join(f"{split} {share:.1%}" for split, share in report["unk_share"].items())
    unit = ("one per character (code point)" if report.get("label_unit", LEGACY_LABEL_UNIT)
            == CODEPOINT else "one per letter with its marks")
    summary = (f"**{report['vocab_size']} labels** (with [PAD], [UNK] and the word delimiter; "
               f"{unit}) from {report['train_utterances']} training utterances; {len(rare)} rare, "
               f"{len({r['label'] for r in unseen_rows})} in dev/test but not in train "
               f"(share that would become [UNK]: {shares or 'none'}).")
    if unseen_rows:
        summary += (" If an unseen label is a look-alike of a training label, add a mapping; "
                    "if it is punctuation, add it to the ignored characters.")
    advice = _unit_advice(report)
    if advice:
        summary += f"\n\n{badge('note')} {advice}"
    summary += " **Next:** step 4, Train."
    html_text = alphabet_html(report["train_counts"], rare,
                              {r["label"]: r["count"] for r in unseen_rows})
    return VocabView(summary, html_text, counts, unseen, normalisation_preview(ws, profile))


def _unit_advice(report: dict) -> str:
    """The vocabulary report's advice on labels seen once ("" for an older report)."""
    from workbench.vocab import VocabReport

    if "seen_once" not in report:
        return ""
    fields = {k: report[k] for k in ("vocab_size", "train_utterances", "rare",
                                     "unk_share", "split_label_counts", "rare_threshold",
                                     "label_unit", "seen_once")}
    return VocabReport(train_counts=report["train_counts"], unseen={}, **fields).unit_advice()


def alphabet_html(train_counts: list[dict], rare: set[str], unseen: dict[str, int]) -> str:
    """The labels as chips with their counts; rare ones amber, unseen (dev/test only) red."""
    def chip(label: str, count: int, kind: str) -> str:
        title = {"rare": "rare in train", "unseen": "not in train: becomes [UNK]",
                 "ok": "in train"}[kind]
        return (f'<span class="wb-chip wb-{kind}" title="{title}"><b>{html.escape(label)}</b>'
                f"<small> {count}</small></span>")

    chips = [chip(s["token"], s["count"], "rare" if s["token"] in rare else "ok")
             for s in train_counts]
    chips += [chip(label, count, "unseen") for label, count in unseen.items()]
    legend = ('<div class="wb-legend"><span class="wb-chip wb-ok">in train</span>'
              '<span class="wb-chip wb-rare">rare</span>'
              '<span class="wb-chip wb-unseen">only in dev/test</span></div>')
    return f'<div class="wb-alphabet">{"".join(chips)}</div>{legend}'


def normalisation_preview(ws: Workspace, profile: OrthographyProfile,
                          count: int = PREVIEW_UTTERANCES) -> pd.DataFrame:
    """A few training transcripts before and after normalisation, and their labels."""
    rows = []
    for utt in ws.read_split("train")[:count]:
        text = normalize(utt.text, profile)
        rows.append({"id": utt.id, "transcript": utt.text, "normalised": text,
                     "labels": " ".join(tokenize(text, profile))})
    return pd.DataFrame(rows, columns=PREVIEW_COLUMNS)
