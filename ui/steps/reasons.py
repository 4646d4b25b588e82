"""Why something was set aside or flagged, in plain words, and what to do about it.

The importer (``data_recipes``, ``ui/uploads.py``) and the audit (``workbench.audit``) name
each problem by a code (``too_short_for_ctc``, ``row_without_audio``); the page leads with
the file or utterance the user knows, a plain reason and what to do, and keeps the code in a
last column for technical users. Every code the library can produce has an entry here
(``tests/ui/test_reasons.py`` finds the codes in the sources and fails on a new one).

Import items name files by their path on the server (``<workspace>/uploads/<time>/a.wav``);
:func:`user_path` turns them back into the names the user uploaded.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from ui.messages import for_page


@dataclass(frozen=True)
class Reason:
    """A check in plain words.

    Attributes:
        short: A few words for lists and summaries ("too long").
        reason: What is wrong, in a sentence.
        todo: What the user can do about it.
    """

    short: str
    reason: str
    todo: str


R = Reason
REASONS: dict[str, Reason] = {
    # ---- the audit, one utterance at a time (workbench/audit/checks.py)
    "segment_cut_short": R("segment past the end", "The segment's times run past the end "
                           "of its recording, so the clip lacks the end of its transcript.",
                           "Check that the transcript file names the right recording (a "
                           "transcript running past its recording usually means another "
                           "media file), or correct the segment's times."),
    "empty_audio": R("no sound", "The clip has no audio at all (0 seconds).",
                     "Check the recording, or the segment's times in the transcript file."),
    "truncated": R("incomplete file", "The audio file ends before its own header says it "
                   "should: the recording is incomplete.",
                   "Copy or export the recording again from the original."),
    "nan": R("damaged audio", "The audio file holds damaged (invalid) samples.",
             "Export the recording again from the original."),
    "silent": R("silent", "The clip is silent, or too quiet to hear speech.",
                "Listen to it: if there is speech, record it louder; otherwise remove it."),
    "clipped": R("distorted (too loud)", "Parts of the recording were too loud and are "
                 "distorted (clipped).", "Kept for training. Record at a lower level "
                 "next time; re-record it if it sounds bad."),
    "too_long": R("too long", "The clip is longer than 'Longest clip kept'.",
                  "Cut the recording into shorter segments (a sentence or two each), or "
                  "raise 'Longest clip kept' and run the check again."),
    "too_short_for_ctc": R("too short for its transcript", "The clip is too short for the "
                           "length of its transcript.",
                           "Listen to it: the transcript may belong to another clip, or the "
                           "clip was cut too early."),
    "empty_transcript": R("no transcript", "The transcript is empty (or holds only "
                          "characters the Alphabet step ignores).",
                          "Write the transcript in the source and import again, or leave it "
                          "out."),
    "duplicate_audio": R("same audio twice", "The same recording is already in the data "
                         "under another name.", "Nothing to do: only the first copy is used. "
                         "Remove the copy from the source if it was filed twice."),
    "chars_per_second": R("transcript does not fit the clip", "The transcript is unusually "
                          "long or short for the clip's length.",
                          "Kept for training. Listen and compare: it may be another clip's "
                          "transcript, a partial one, or a clip cut in the wrong place."),
    # ---- the audit, the corpus as a whole (workbench/audit/corpus.py)
    "little_training_audio": R("little training audio", "There is little audio to train on, "
                               "so expect many errors.", "Add more transcribed recordings: "
                               "more audio helps more than any setting."),
    "single_speaker": R("one speaker only", "Every recording is by one speaker.",
                        "Add recordings of other speakers, so that the model and its test "
                        "cover more than one voice."),
    "unknown_speakers": R("speakers unknown", "No recording says who is speaking, so the "
                          "same voices may be in training and test.",
                          "Name the speakers when importing ('Speaker column', 'Speaker of "
                          "every segment', or ELAN participants) and import again."),
    "speaker_leak": R("speaker in training and test", "A speaker is in the training data "
                      "and also in dev or test, so the scores will look too good.",
                      "Name the speaker of every recording (at least 3 speakers) and import "
                      "again: each speaker then stays in one split."),
    "audio_leak": R("same audio in training and test", "The same recording is in the "
                    "training data and in dev or test.",
                    "Remove the copy filed under another name from the source and import "
                    "again."),
    "duplicate_transcript": R("same transcript twice", "Several recordings have the same "
                              "transcript.", "Fine when speakers read the same sentences; "
                              "otherwise check that no transcript is in the wrong row."),
    # ---- the import: recordings (data_recipes/common.py, ui/uploads.py)
    "row_without_audio": R("audio file missing", "The transcript names an audio file that "
                           "is not there.", "Upload the audio file with the transcripts, "
                           "or correct its name in the transcript file."),
    "audio_not_uploaded": R("audio not uploaded", "The transcript names an audio file that "
                            "was not uploaded with it.", "Upload the recording together "
                            "with its transcript file, in one upload."),
    "unreadable_audio": R("audio unreadable", "The audio file cannot be read: it is empty, "
                          "damaged, or not audio.", "Open it in an audio editor and export "
                          "it again as WAV or FLAC."),
    "segment_past_end": R("segment after the end", "The segment starts after the end of its "
                          "recording.", "Check the segment's times, and that the "
                          "annotation belongs to this recording."),
    "empty_segment": R("segment without length", "The segment has no length (it ends where "
                       "it starts).", "Fix its start and end times in the annotation."),
    # ---- tables (data_recipes/table.py)
    "malformed_row": R("row unreadable", "A row of the transcript table cannot be read (a "
                       "wrong number of columns, or no audio file name).",
                       "Fix the row: look for a stray comma, tab or quote."),
    "audio_without_row": R("audio without transcript", "An audio file has no row in the "
                           "transcript table.", "Add a row for it to the table, or leave "
                           "it out if it is not needed."),
    "encoding_guessed": R("table not UTF-8", "The table is not saved as UTF-8; it was read "
                          "as Windows-1252.", "Check that special letters look right in "
                          "the transcripts; save the table as UTF-8 to be sure."),
    # ---- ELAN and TextGrid (data_recipes/elan.py, textgrid.py)
    "unreadable_eaf": R("ELAN file unreadable", "The ELAN file cannot be read.",
                        "Open it in ELAN and save it again."),
    "unsafe_xml": R("ELAN file refused", "The ELAN file holds XML constructs that are "
                    "refused for safety.", "Open it in ELAN and save it again."),
    "unreadable_textgrid": R("TextGrid unreadable", "The TextGrid file cannot be read.",
                             "Open it in Praat and save it again as a text file."),
    "media_not_found": R("recording not found", "The recording this annotation file belongs "
                         "to was not found.", "Upload the recording with it, under the same "
                         "name as the annotation file (or as the file links it)."),
    "tier_not_found": R("tier not found", "The chosen tier is not in this file.",
                        "Choose one of the file's tiers (see the details) in the 'Tier' "
                        "option."),
    "point_tier": R("point tier", "The chosen tier is a point tier: it marks instants, not "
                    "stretches of speech.", "Choose an interval tier in the 'Tier' option."),
    "no_annotations": R("no transcribed tier", "No tier of the file has time-aligned "
                        "annotations with text.", "Open the file in ELAN and check the tier "
                        "that holds the transcription."),
    "no_intervals": R("no transcribed tier", "No interval tier of the TextGrid has text.",
                      "Open the file in Praat: transcripts must be in an interval tier."),
    "missing_time": R("annotation without time", "An annotation has no time of its own.",
                      "Align it in ELAN, or choose a time-aligned tier."),
    "unsupported_tier": R("tier without times", "The tier's annotations have no times of "
                          "their own.", "Choose the time-aligned tier in the 'Tier' option."),
    "overlapping_annotations": R("overlapping segments", "Two segments overlap in time; both "
                                 "were kept.", "Fine for overlapping speakers; otherwise fix "
                                 "the times in ELAN."),
    "empty_annotations": R("empty annotations", "Some annotations have no text; they were "
                           "skipped.", "Nothing to do if they are pauses; otherwise fill them "
                           "in."),
    "empty_intervals": R("empty intervals", "Some intervals have no text; they were skipped.",
                         "Nothing to do if they are pauses; otherwise fill them in Praat."),
    "interpolated_times": R("times spread evenly", "Some annotations are not aligned in ELAN; "
                            "they were given the times ELAN shows, spread evenly over their "
                            "parent annotation.", "Listen to a few of these clips; align the "
                            "annotations in ELAN if the words do not fit."),
    "media_substituted": R("another recording used", "The recording the ELAN file links was "
                           "not where the link points; a file of a similar name was used.",
                           "Check that it is the same recording, or fix the link in ELAN "
                           "(Edit, Linked Files)."),
    "tier_chosen": R("tier chosen", "The file has an utterance tier with word (or other) "
                     "tiers under it; the utterance tier was imported.",
                     "Nothing to do, unless the transcription is on one of the tiers under "
                     "it: then choose that tier."),
    "speaker_overlap": R("speakers overlap", "Two speakers talk at the same time; both "
                         "segments were kept, each may hold the other voice too.",
                         "Fine if the overlap is short; otherwise leave these clips out or "
                         "trim the times in ELAN."),
    # ---- Hugging Face datasets (data_recipes/hf_dataset.py)
    "split_not_imported": R("split not imported", "The dataset has a split that is not "
                            "train, validation or test; its rows were left out.",
                            "Import that split on its own (choose it as the dataset split) "
                            "if it holds transcribed speech you want."),
    "source_splits_incomplete": R("dataset's splits not kept", "The dataset does not have "
                                  "all of train, validation and test, so all its rows were "
                                  "split here by speaker.", "Nothing to do; its own split "
                                  "is kept only when all three are there."),
    # ---- Common Voice (data_recipes/commonvoice.py)
    "clip_in_several_splits": R("clip listed twice", "The clip is in more than one of Common "
                                "Voice's splits.", "Nothing to do: it is kept in the first "
                                "one only."),
    "validated_not_in_splits": R("clips outside the splits", "Some validated clips are in "
                                 "none of Common Voice's train, dev and test lists.",
                                 "Nothing to do for most uses; the command line can import "
                                 "them too."),
    # ---- Kaldi folders (data_recipes/kaldi.py)
    "malformed_line": R("line unreadable", "A line of a Kaldi file is not '<id> <value>'.",
                        "Fix the line in the file."),
    "duplicate_id": R("id used twice", "An id appears twice in a Kaldi file.",
                      "Give every line an id of its own."),
    "malformed_segment": R("segment unreadable", "A line of the segments file is not "
                           "'<utterance> <recording> <start> <end>' with a positive length.",
                           "Fix the line: times in seconds, the end after the start."),
    "segment_without_recording": R("segment without recording", "A segment names a "
                                   "recording that is not in wav.scp.",
                                   "Add the recording to wav.scp, or remove the segment."),
    "unsupported_wav_scp_command": R("recording is a command", "The wav.scp file runs a command "
                                     "instead of naming an audio file.",
                                     "Convert the recordings to WAV or FLAC files and list "
                                     "those in wav.scp."),
    "text_without_audio": R("transcript without recording", "A transcript line has no "
                            "recording.", "Add the recording (wav.scp, segments), or remove "
                            "the line."),
    "audio_without_text": R("recording without transcript", "A recording has no transcript "
                            "line.", "Add its line to the text file, or leave it out."),
}
del R


def reason_for(check: str) -> Reason:
    """The plain reason of ``check`` (a readable fallback for a code not known here)."""
    known = REASONS.get(check)
    if known is not None:
        return known
    words = check.replace("_", " ")
    return Reason(words, f"{words.capitalize()}.", "See the details.")


# ``<root>/uploads/<time>/`` and ``<root>/sources/<time>-<stem>/``: where uploads are kept.
UPLOAD_FOLDERS = ("uploads", "sources")
_ABSOLUTE = re.compile(r"(?<![\w.~])/(?:[^\s/:'\"()]+/)+([^\s/:'\"()]+)")


def user_path(text: str, workspace: Path | None = None) -> str:
    """``text`` with server paths as the user knows them: a file inside an upload relative
    to that upload (``clips/a.wav``), any other absolute path by its file name."""
    if workspace is not None:
        for root in dict.fromkeys((str(workspace), str(Path(workspace).resolve()))):
            for folder in UPLOAD_FOLDERS:
                text = re.sub(re.escape(f"{root}/{folder}/") + r"[^/\s]+/", "", text)
            text = text.replace(root + "/", "")
    return _ABSOLUTE.sub(lambda m: m.group(1), text)


def page_detail(text: str, workspace: Path | None = None) -> str:
    """A library detail as the page shows it: page wording, user paths, lists on one line
    per entry (a table cell keeps no line breaks: entries are separated by semicolons)."""
    text = user_path(for_page(text), workspace)
    head, *entries = [line.strip() for line in text.splitlines() if line.strip()] or [""]
    if not entries:
        return head
    return f"{head} " + "; ".join(entry.removeprefix("- ") for entry in entries)
