"""Import options: one typed home for every choice a source reader takes.

Each field of :class:`ImportOptions` is one option, described by its metadata (as
``workbench/config.py`` describes the training settings):

- ``help``: what it does, in words that suit both the command line and the page;
- ``formats``: the registered formats whose readers take it (the CLI help names them, the
  page shows the widget only when one of them is detected or chosen);
- ``label``, ``widget``: how the page shows it: ``"choice"`` (a dropdown filled with what
  the upload holds, the ``ui.uploads.SourceInfo`` list named by ``choices``), ``"text"``,
  ``"check"``, or ``None`` (command line only);
- ``flag``: the CLI flag when it is not ``--<name-with-dashes>``; a flag for an option that
  is on by default turns it off (``flag_help`` then says what turning it off does).

To add an option, add a field here and take the keyword in the readers of its formats:
the ``workbench prepare`` flags, the options ``cmd_prepare`` forwards, the Data step's
widgets and the page's words for the flag are all made from the field.
"""

from __future__ import annotations

import argparse
from collections.abc import Mapping
from dataclasses import Field, dataclass, field, fields
from typing import Any

FORMAT_NAMES = {
    "audiofolder": "audiofolder", "csv": "CSV", "tsv": "TSV", "elan": "ELAN",
    "textgrid": "TextGrid", "commonvoice": "Common Voice", "kaldi": "Kaldi",
    "hf-dataset": "HF dataset",
}
TABLES = ("csv", "tsv", "audiofolder", "hf-dataset")  # sources with named columns
TIERS = ("elan", "textgrid")
WIDGETS = ("choice", "text", "check", None)


def _option(default: Any, help: str, *, formats: tuple[str, ...], label: str = "",
            widget: str | None = None, choices: str = "", flag: str = "",
            flag_help: str = "") -> Any:
    """A dataclass field described as an import option (see the module docstring)."""
    metadata = {"help": help, "formats": formats, "label": label, "widget": widget,
                "choices": choices, "flag": flag, "flag_help": flag_help}
    return field(default=default, metadata=metadata)


@dataclass(frozen=True)
class ImportOptions:
    """How to read the sources (None: detect or decide automatically)."""

    audio_column: str | None = _option(
        None, "column holding the audio (a file path, or a dataset's Audio column)",
        formats=TABLES, label="Audio column", widget="choice", choices="columns")
    text_column: str | None = _option(
        None, "column holding the transcript", formats=TABLES, label="Transcript column",
        widget="choice", choices="columns")
    speaker_column: str | None = _option(
        None, "column holding the speaker id", formats=TABLES, label="Speaker column",
        widget="choice", choices="columns")
    tier: str | None = _option(
        None, "name of the tier holding the transcription", formats=TIERS, label="Tier",
        widget="choice", choices="tiers")
    participant: str | None = _option(
        None, "use every tier of this participant (one speaker)", formats=("elan",),
        label="Participant", widget="choice", choices="participants")
    linguistic_type: str | None = _option(
        None, "use the tiers of this linguistic type, one per participant",
        formats=("elan",), label="Linguistic type", widget="choice",
        choices="linguistic_types")
    speaker: str | None = _option(
        None, "the speaker of every segment", formats=("textgrid",),
        label="Speaker of every segment", widget="text")
    speaker_from_tier: bool = _option(
        False, "use the tier's name as the speaker", formats=("textgrid",),
        label="Use the tier name as the speaker", widget="check")
    # Command line only: on the page, the recording is found among the uploaded files.
    media: str | None = _option(
        None, "the recording of a single TextGrid, when it does not have the TextGrid's "
        "name", formats=("textgrid",))
    split: str | None = _option(
        None, "import only this split of the dataset, and split it here (default: its "
        "train, validation and test splits)", formats=("hf-dataset",),
        label="Dataset split", widget="choice", choices="splits")
    use_splits: bool = _option(
        True, "keep the source's own train/dev/test split", formats=("commonvoice",
                                                                        "hf-dataset"),
        label="Keep the source's own train/dev/test split", widget="check",
        flag="--no-source-splits",
        flag_help="ignore the source's own train/dev/test split and split all of it here "
                  "(Common Voice: all of validated.tsv)")

    def reader_options(self) -> dict[str, Any]:
        """The options as keywords for the readers (each reader takes those it knows)."""
        return {f.name: getattr(self, f.name) for f in option_fields(type(self))}

    @classmethod
    def from_args(cls, args: argparse.Namespace, **extra: Any) -> ImportOptions:
        """The options parsed by :func:`add_arguments` (``extra``: a subclass's fields)."""
        return cls(**{f.name: getattr(args, f.name) for f in option_fields(cls)}, **extra)

    @classmethod
    def from_values(cls, values: Mapping[str, Any], **extra: Any) -> ImportOptions:
        """The options from the page's widget values by field name (``""``: automatic)."""
        chosen = {f.name: _page_value(f, values[f.name])
                  for f in option_fields(cls) if f.name in values}
        return cls(**chosen, **extra)


def _page_value(item: Field, value: Any) -> Any:
    if isinstance(item.default, bool):
        return bool(value)
    text = "" if value is None else str(value).strip()
    return text or None


def option_fields(cls: type = ImportOptions) -> list[Field]:
    """The fields of ``cls`` that are import options (a subclass may add other fields)."""
    return [f for f in fields(cls) if "formats" in f.metadata]


def page_fields(cls: type = ImportOptions) -> list[Field]:
    """The options the page shows, in field order."""
    return [f for f in option_fields(cls) if f.metadata["widget"]]


def flag(item: Field) -> str:
    """The CLI flag of an option."""
    return item.metadata["flag"] or "--" + item.name.replace("_", "-")


def formats_text(formats: tuple[str, ...]) -> str:
    """``("elan", "textgrid")`` -> ``"ELAN/TextGrid"``."""
    return "/".join(FORMAT_NAMES.get(f, f) for f in formats)


def applies(item: Field, formats: set[str] | frozenset[str]) -> bool:
    """Whether the option is read by one of ``formats``."""
    return bool(set(item.metadata["formats"]) & set(formats))


def add_arguments(parser: argparse.ArgumentParser, cls: type = ImportOptions) -> None:
    """Add one flag per option of ``cls`` (the ``workbench prepare`` flags)."""
    for item in option_fields(cls):
        where = formats_text(item.metadata["formats"])
        if isinstance(item.default, bool):
            turns_off = item.default
            text = item.metadata["flag_help"] if turns_off else item.metadata["help"]
            parser.add_argument(flag(item), dest=item.name, default=item.default,
                                action="store_false" if turns_off else "store_true",
                                help=f"{where}: {text}")
        else:
            parser.add_argument(flag(item), dest=item.name, default=item.default,
                                help=f"{where}: {item.metadata['help']}")
