"""Import options have one home: the readers, the CLI flags and cmd_prepare all follow it."""

import inspect
from dataclasses import dataclass

from data_recipes import READERS
from data_recipes.options import (
    WIDGETS,
    ImportOptions,
    _option,
    add_arguments,
    flag,
    option_fields,
)
from workbench.cli import build_parser

# The flags `workbench prepare` had before the options were generated: scripts use them.
FLAGS = {"--audio-column", "--text-column", "--speaker-column", "--tier", "--participant",
         "--linguistic-type", "--speaker", "--speaker-from-tier", "--media",
         "--no-source-splits"}


def prepare_parser():
    return build_parser()._subparsers._group_actions[0].choices["prepare"]


def test_every_option_is_described_and_read_by_the_formats_it_names():
    for item in option_fields():
        meta = item.metadata
        assert meta["help"] and meta["formats"], item.name
        assert meta["widget"] in WIDGETS, item.name
        assert not meta["widget"] or meta["label"], item.name
        assert (meta["widget"] == "choice") == bool(meta["choices"]), item.name
        for fmt in meta["formats"]:
            assert fmt in READERS, (item.name, fmt)
            assert item.name in inspect.signature(READERS[fmt]).parameters, (item.name, fmt)


def test_every_keyword_a_reader_takes_is_an_option_naming_its_format():
    options = {f.name: f for f in option_fields()}
    for fmt, reader in READERS.items():
        for name, parameter in inspect.signature(reader).parameters.items():
            if parameter.kind != parameter.KEYWORD_ONLY or name == "workspace":
                continue
            assert name in options, f"{fmt} reads {name}: add it to ImportOptions"
            assert fmt in options[name].metadata["formats"], (fmt, name)


def test_the_prepare_flags_are_generated_with_their_old_names():
    parser = prepare_parser()
    flags = {s for action in parser._actions for s in action.option_strings}
    assert FLAGS <= flags
    assert {flag(f) for f in option_fields()} <= flags
    help_text = " ".join(parser.format_help().split())
    assert "ELAN/TextGrid: name of the tier holding the transcription" in help_text
    assert "Common Voice/HF dataset: ignore the source's own train/dev/test split" in help_text


def test_cmd_prepare_options_come_from_the_flags():
    parser = build_parser()
    defaults = parser.parse_args(["prepare", "src", "-w", "ws"])
    assert ImportOptions.from_args(defaults) == ImportOptions()
    args = parser.parse_args(["prepare", "src", "-w", "ws", "--tier", "words",
                              "--speaker-from-tier", "--no-source-splits", "--media", "a.wav",
                              "--split", "train"])
    assert ImportOptions.from_args(args).reader_options() == {
        **ImportOptions().reader_options(), "tier": "words", "speaker_from_tier": True,
        "use_splits": False, "media": "a.wav", "split": "train"}


def test_page_values_become_options():
    values = {"text_column": "", "tier": " words ", "speaker_from_tier": 1, "use_splits": False,
              "speaker": None}
    assert ImportOptions.from_values(values) == ImportOptions(
        tier="words", speaker_from_tier=True, use_splits=False)


@dataclass(frozen=True)
class WithDialect(ImportOptions):
    """ImportOptions with one more option, as a contributor would add it."""

    dialect: str | None = _option(None, "the dialect every clip is in", formats=("csv",),
                                  label="Dialect", widget="text")


def test_a_new_option_becomes_a_flag_forwarded_to_its_readers():
    import argparse

    parser = argparse.ArgumentParser()
    add_arguments(parser, WithDialect)
    args = parser.parse_args(["--dialect", "Cusco"])
    assert WithDialect.from_args(args).reader_options()["dialect"] == "Cusco"
    assert "CSV: the dialect every clip is in" in parser.format_help()
