"""Word, character and grapheme error rates of a trained run, with per-utterance analysis.

Scoring rules (the same in :func:`error_rates`, :func:`per_utterance` and the metric scripts
in ``workbench/metrics/``):

- references and hypotheses are compared in Unicode NFC, so é typed as one code point and
  as e + combining accent score the same;
- runs of whitespace count as one space, leading and trailing whitespace is ignored;
- WER counts words split at spaces; CER counts code points of the NFC text; GER (grapheme
  error rate) counts extended grapheme clusters, what a reader perceives as one character
  (Hindi क्षि is one cluster of 4 code points, so losing its virama costs 1/4 in CER and
  1/1 in GER); text without combining sequences has GER = CER;
- WER, CER and GER are corpus rates: all edits over all reference units, not a mean of
  per-utterance rates, so short utterances do not weigh more than long ones;
- a space between words counts as one unit for the CER and for the GER;
- when most letters of the references are of a script written without spaces between
  words (Thai, Lao, Khmer, Myanmar, Chinese, Japanese: ``scripts_info.unspaced_script``),
  a "word" is a phrase or a sentence, so the report marks the WER as not meaningful
  (``wer_meaningful``, ``wer_note``), leads with CER and GER and ranks utterances by CER;
- an utterance whose reference is empty (after normalisation) has nothing to match, so each
  word (character) of its hypothesis counts as an insertion; such utterances are counted in
  ``empty_references`` so they can be found and fixed.

Which utterances count (:func:`scoring_set`): those of the split that the audit kept. What
the audit set aside (silent, truncated, too long, too short for its transcript, an empty
transcript, a held-out copy of training audio...) is not scored; the report lists each of
them with the audit's reason. ``include_excluded`` scores the whole split.

:func:`transcribe_and_score` is the one scoring path: training's dev evaluation, `workbench
evaluate`, the page and the benchmarks all call it (or :func:`error_rates` for texts they
already have), so the dev CER a run logs is what ``workbench evaluate --split dev`` reports.
:func:`evaluate_run` transcribes a split with a run's model, normalises the references with
the workspace's orthography profile (the model's output already is in that form), and stores
the report in the run (``Run.write_report``), one entry per split.
"""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

from jiwer.transforms import AbstractTransform

from workbench.errors import WorkbenchError
from workbench.manifest import Utterance
from workbench.run import REPORT, Run, find_run
from workbench.scripts_info import graphemes, nfc, unspaced_script
from workbench.workspace import Workspace

REPORT_NAME = REPORT
BATCH_S = 20.0  # padded audio per forward pass, as transcription uses (transcribe.BATCH_S)
METRICS_DIR = Path(__file__).resolve().parent / "metrics"
METRIC_NAMES = ("wer", "cer", "ger")
CER_UNIT = "code points of NFC text (a space between words counts as one)"
GER_UNIT = ("extended grapheme clusters of NFC text, what a reader perceives as one character "
            "(Unicode UAX #29; a space between words counts as one)")


@dataclass(frozen=True)
class EditCounts:
    """Alignment counts of hypotheses against references, in words, code points or
    grapheme clusters."""

    reference: int = 0
    hits: int = 0
    substitutions: int = 0
    deletions: int = 0
    insertions: int = 0

    @property
    def errors(self) -> int:
        return self.substitutions + self.deletions + self.insertions

    def __add__(self, other: EditCounts) -> EditCounts:
        pairs = zip(self._values(), other._values(), strict=True)
        return EditCounts(*(a + b for a, b in pairs))

    def _values(self) -> tuple[int, ...]:
        return (self.reference, self.hits, self.substitutions, self.deletions, self.insertions)

    def rate(self) -> float:
        """Errors per reference unit; an empty reference counts as one unit (stays finite)."""
        return self.errors / max(self.reference, 1)

    def to_dict(self) -> dict[str, int]:
        return {**asdict(self), "errors": self.errors}


@dataclass(frozen=True)
class UtteranceScore:
    """Errors of one utterance.

    Attributes:
        index: Position in the input (in a run report: in the split's manifest).
        id: Utterance id ("" when not given).
        audio: Audio path ("" when not given).
        reference: Normalised reference text.
        hypothesis: Model output.
        wer: Word errors / reference words (errors / 1 for an empty reference).
        cer: Character edits / reference characters, in NFC code points (likewise).
        ger: Grapheme-cluster edits / reference grapheme clusters (likewise).
        words: Word alignment counts (S/D/I/hits).
        chars: Code point alignment counts; ``chars.errors`` is the edit distance.
        graphemes: Grapheme cluster alignment counts.
    """

    index: int
    id: str
    audio: str
    reference: str
    hypothesis: str
    wer: float
    cer: float
    ger: float
    words: EditCounts
    chars: EditCounts
    graphemes: EditCounts

    def to_dict(self) -> dict[str, Any]:
        return {
            "index": self.index,
            "id": self.id,
            "audio": self.audio,
            "reference": self.reference,
            "hypothesis": self.hypothesis,
            "wer": self.wer,
            "cer": self.cer,
            "ger": self.ger,
            "reference_words": self.words.reference,
            "substitutions": self.words.substitutions,
            "deletions": self.words.deletions,
            "insertions": self.words.insertions,
            "word_errors": self.words.errors,
            "reference_chars": self.chars.reference,
            "char_errors": self.chars.errors,
            "reference_graphemes": self.graphemes.reference,
            "grapheme_errors": self.graphemes.errors,
        }


@dataclass
class EvalReport:
    """The evaluation of one run on one split.

    Attributes:
        run: Run id (the run folder's name).
        run_dir: The run folder.
        split: "train", "dev" or "test".
        rates: What :func:`error_rates` returned for the scored utterances.
        utterances: Per-utterance scores, worst first.
        skipped: Utterances whose audio could not be read: id, audio and reason.
        left_out: Utterances not scored, each {"id", "reason"}: set aside by the audit (the
            audit's checks and details), or left out on request (``exclude_ids``).
        scored_set: "audited" (what the audit kept) or "all" (``include_excluded``).
        audio_seconds: Audio transcribed.
        elapsed_seconds: Wall time of the transcription.
        created: When the report was made (local time, ISO 8601).
        decoder: How hypotheses were decoded.
    """

    run: str
    run_dir: str
    split: str
    rates: dict[str, Any]
    utterances: list[UtteranceScore]
    skipped: list[dict[str, str]] = field(default_factory=list)
    left_out: list[dict[str, str]] = field(default_factory=list)
    scored_set: str = "audited"
    audio_seconds: float = 0.0
    elapsed_seconds: float = 0.0
    created: str = ""
    decoder: str = "greedy"

    @property
    def wer(self) -> float:
        return float(self.rates["wer"])

    @property
    def cer(self) -> float:
        return float(self.rates["cer"])

    @property
    def ger(self) -> float | None:
        """Grapheme error rate (None in rates made before it was computed)."""
        ger = self.rates.get("ger")
        return None if ger is None else float(ger)

    @property
    def wer_meaningful(self) -> bool:
        return bool(self.rates.get("wer_meaningful", True))

    def to_dict(self) -> dict[str, Any]:
        """Plain data for report.json (CER and GER first where the WER is not meaningful)."""
        headline = {"wer": self.wer, "cer": self.cer, "ger": self.ger}
        order = ("wer", "cer", "ger") if self.wer_meaningful else ("cer", "ger", "wer")
        return {
            "run": self.run,
            "run_dir": self.run_dir,
            "split": self.split,
            "created": self.created,
            "decoder": self.decoder,
            **{name: headline[name] for name in order},
            "cer_unit": self.rates.get("cer_unit", CER_UNIT),
            "ger_unit": self.rates.get("ger_unit", GER_UNIT),
            "wer_meaningful": self.wer_meaningful,
            "wer_note": self.rates.get("wer_note", ""),
            "notes": rate_notes(self.rates),
            "rates": self.rates,
            "audio_seconds": self.audio_seconds,
            "elapsed_seconds": self.elapsed_seconds,
            "skipped": self.skipped,
            "scored_set": self.scored_set,
            "left_out": self.left_out,
            "utterances": [u.to_dict() for u in self.utterances],
        }


# ---------------------------------------------------------------------------------------------
# Scoring


def error_rates(references: Sequence[str], hypotheses: Sequence[str]) -> dict[str, Any]:
    """Corpus WER, CER and GER with their edit counts (see the module's scoring rules).

    Args:
        references: Normalised reference transcripts.
        hypotheses: Model outputs, one per reference.

    Returns:
        ``{"wer", "cer", "ger", "utterances", "empty_references", "words": {...},
        "characters": {...}, "graphemes": {...}, "cer_unit", "ger_unit", "wer_meaningful",
        "wer_note", "unspaced_script"}`` where the count dicts hold reference, hits,
        substitutions, deletions, insertions and errors; ``unspaced_script`` names the
        script written without spaces that most reference letters are in (None if none),
        and ``wer_note`` says why the WER is not meaningful then ("" otherwise).

    Raises:
        WorkbenchError: The lists differ in length, or no reference has any word.
    """
    words, chars, clusters = _score_pairs(references, hypotheses)
    total_words = sum(words, EditCounts())
    total_chars = sum(chars, EditCounts())
    total_clusters = sum(clusters, EditCounts())
    if total_words.reference == 0:
        raise WorkbenchError(
            f"All {len(references)} references are empty, so there is nothing to score. "
            "Check that the transcripts are filled in and that the orthography profile's "
            "ignore setting does not remove every letter."
        )
    return {
        "wer": total_words.rate(),
        "cer": total_chars.rate(),
        "ger": total_clusters.rate(),
        "utterances": len(references),
        "empty_references": sum(1 for w in words if w.reference == 0),
        "words": total_words.to_dict(),
        "characters": total_chars.to_dict(),
        "graphemes": total_clusters.to_dict(),
        "cer_unit": CER_UNIT,
        "ger_unit": GER_UNIT,
        **wer_meaning(references),
    }


def wer_meaning(references: Sequence[str]) -> dict[str, Any]:
    """Whether the WER of ``references`` means something: not for unspaced scripts.

    Returns:
        ``{"wer_meaningful", "wer_note", "unspaced_script"}``.
    """
    script = unspaced_script(nfc(r) for r in references)
    if script is None:
        return {"wer_meaningful": True, "wer_note": "", "unspaced_script": None}
    note = (f"{script} is written without spaces between words, so a 'word' split at "
            "spaces is a phrase or a whole sentence: read the CER and the GER.")
    return {"wer_meaningful": False, "wer_note": note, "unspaced_script": script}


def rate_notes(rates: dict[str, Any]) -> list[str]:
    """What each rate of ``rates`` (from :func:`error_rates`) counts, CER and GER first."""
    wer = "WER: word edits / reference words, words split at spaces."
    if not rates.get("wer_meaningful", True):
        wer += f" Not meaningful here: {rates.get('wer_note', '')}"
    return [f"CER: edits / reference characters, counted in {CER_UNIT}.",
            f"GER: edits / reference grapheme clusters, counted in {GER_UNIT}.", wer]


def per_utterance(
    references: Sequence[str],
    hypotheses: Sequence[str],
    ids: Sequence[str] | None = None,
    audio: Sequence[str] | None = None,
) -> list[UtteranceScore]:
    """Score each utterance; worst first (WER, then CER, then word errors; CER, then GER,
    then character errors where the WER is not meaningful: see :func:`wer_meaning`).

    Args:
        references: Normalised reference transcripts.
        hypotheses: Model outputs, one per reference.
        ids: Utterance ids, one per reference (optional).
        audio: Audio paths, one per reference (optional).

    Returns:
        One score per utterance; ``index`` keeps the input position.

    Raises:
        WorkbenchError: The sequences differ in length.
    """
    ids = list(ids) if ids is not None else [""] * len(references)
    audio = [str(a) for a in audio] if audio is not None else [""] * len(references)
    if not len(ids) == len(audio) == len(references):
        raise WorkbenchError(
            f"Got {len(references)} references, {len(ids)} ids and {len(audio)} audio paths; "
            "give one of each per utterance."
        )
    words, chars, clusters = _score_pairs(references, hypotheses)
    scores = [
        UtteranceScore(
            index=i, id=ids[i], audio=audio[i], reference=_squash(references[i]),
            hypothesis=_squash(hypotheses[i]), wer=words[i].rate(), cer=chars[i].rate(),
            ger=clusters[i].rate(), words=words[i], chars=chars[i], graphemes=clusters[i])
        for i in range(len(references))
    ]
    if wer_meaning(references)["wer_meaningful"]:
        return sorted(scores, key=lambda s: (-s.wer, -s.cer, -s.words.errors, s.index))
    return sorted(scores, key=lambda s: (-s.cer, -s.ger, -s.chars.errors, s.index))


def _squash(text: str) -> str:
    """NFC, with runs of whitespace as one space and none at either end."""
    return " ".join(nfc(text).split())


def _score_pairs(
    references: Sequence[str], hypotheses: Sequence[str]
) -> tuple[list[EditCounts], list[EditCounts], list[EditCounts]]:
    """Word, code point and grapheme cluster counts per pair (one jiwer call for each, over
    all non-empty references)."""
    import jiwer

    if len(references) != len(hypotheses):
        raise WorkbenchError(
            f"Got {len(references)} references but {len(hypotheses)} hypotheses; they must "
            "pair up one to one."
        )
    refs = [_squash(r) for r in references]
    hyps = [_squash(h) for h in hypotheses]
    words = [EditCounts(insertions=len(h.split())) for h in hyps]
    chars = [EditCounts(insertions=len(h)) for h in hyps]
    clusters = [EditCounts(insertions=len(graphemes(h))) for h in hyps]
    scored = [i for i, r in enumerate(refs) if r]
    if scored:
        ref_in = [refs[i] for i in scored]
        hyp_in = [hyps[i] for i in scored]
        to_clusters = _GraphemeTransform()
        alignments = zip(
            jiwer.process_words(ref_in, hyp_in).alignments,
            jiwer.process_characters(ref_in, hyp_in).alignments,
            jiwer.process_words(ref_in, hyp_in, to_clusters, to_clusters).alignments,
            strict=True)
        for i, (w_align, c_align, g_align) in zip(scored, alignments, strict=True):
            words[i], chars[i], clusters[i] = _counts(w_align), _counts(c_align), _counts(g_align)
    return words, chars, clusters


class _GraphemeTransform(AbstractTransform):
    """jiwer transform: each text as its list of extended grapheme clusters."""

    def process_string(self, s: str) -> list[list[str]]:
        return [graphemes(s)]

    def process_list(self, inp: list[str]) -> list[list[str]]:
        return [graphemes(s) for s in inp]


def _counts(alignment: Sequence[Any]) -> EditCounts:
    """Sum jiwer alignment chunks of one utterance."""
    tally = {"equal": 0, "substitute": 0, "delete": 0, "insert": 0}
    reference = 0
    for chunk in alignment:
        ref_span = chunk.ref_end_idx - chunk.ref_start_idx
        hyp_span = chunk.hyp_end_idx - chunk.hyp_start_idx
        tally[chunk.type] += hyp_span if chunk.type == "insert" else ref_span
        reference += ref_span
    return EditCounts(reference, tally["equal"], tally["substitute"], tally["delete"],
                      tally["insert"])


# ---------------------------------------------------------------------------------------------
# Which utterances count, and the one scoring path


@dataclass(frozen=True)
class ScoringSet:
    """The utterances of a split that are scored, and those left out with the reason.

    Attributes:
        split: The split.
        utterances: Scored, in manifest order.
        left_out: Not scored: {"id", "reason"}, in manifest order.
        positions: Utterance id -> position in the split's manifest.
        audited: True when the audit's exclusions were applied.
    """

    split: str
    utterances: list[Utterance]
    left_out: list[dict[str, str]]
    positions: dict[str, int]
    audited: bool = True


def scoring_set(ws: Workspace, split: str, *, include_excluded: bool = False,
                exclude_ids: set[str] | None = None, required: bool = True) -> ScoringSet:
    """The utterances of ``split`` that count: what the audit kept (see module docstring).

    Args:
        ws: The workspace.
        split: "train", "dev" or "test".
        include_excluded: Score everything, also what the audit set aside.
        exclude_ids: Further ids to leave out, on request.
        required: Raise when nothing is left to score (False: return an empty set).

    Raises:
        WorkbenchError: The split is empty, or (``required``) everything in it is left out.
    """
    utterances = ws.read_split(split)
    if not utterances and required:
        raise WorkbenchError(
            f"The {split} split is empty ({ws.manifest_path(split).name} is missing or has no "
            f"utterances). Prepare and split the data first with "
            f"`workbench prepare SOURCE -w {ws.root}`, or evaluate another split.",
            page=f"The {split} split has no utterances: import data in step 1, Data, or "
                 "choose another split.",
        )
    reasons = {} if include_excluded or not utterances else audit_exclusions(ws)
    for utterance_id in exclude_ids or ():
        reasons.setdefault(utterance_id, "left out on request")
    kept = [u for u in utterances if u.id not in reasons]
    left_out = [{"id": u.id, "reason": reasons[u.id]} for u in utterances if u.id in reasons]
    if not kept and required:
        raise WorkbenchError(
            f"All {len(utterances)} {split} utterances are set aside (by the audit, or on "
            f"request), so nothing is left to score: see `workbench audit -w {ws.root}`, or "
            "score them anyway with --include-excluded.",
            page=f"All {len(utterances)} {split} utterances were set aside by step 2, Check, "
                 "so nothing is left to score: see why in step 2, Check, or choose another "
                 "split.")
    return ScoringSet(split, kept, left_out, {u.id: i for i, u in enumerate(utterances)},
                      audited=not include_excluded)


def audit_exclusions(ws: Workspace) -> dict[str, str]:
    """Utterance id -> why the audit set it aside (its checks and details, joined).

    The audit is run again first when it is missing or older than the data.
    """
    from workbench.audit import EXCLUDED, load_excluded_ids

    excluded = load_excluded_ids(ws)
    try:
        issues = json.loads(ws.audit_path.read_text(encoding="utf-8")).get("issues", [])
    except (OSError, ValueError, AttributeError):
        issues = []
    reasons: dict[str, list[str]] = {}
    for issue in issues:
        if isinstance(issue, dict) and issue.get("action") == EXCLUDED:
            reasons.setdefault(issue["id"], []).append(
                f"{issue.get('check', '')}: {issue.get('detail', '')}".strip(": "))
    return {i: "; ".join(reasons.get(i, ["set aside by the audit"])) for i in excluded}


@dataclass(frozen=True)
class ScoredTranscripts:
    """Hypotheses of a set of utterances, scored.

    Attributes:
        rates: What :func:`error_rates` returned.
        utterances: Per-utterance scores, worst first (``index`` = position in the input).
        skipped: Utterances whose audio could not be read: id, audio and reason.
        audio_seconds: Audio transcribed.
        elapsed_seconds: Wall time of the transcription.
    """

    rates: dict[str, Any]
    utterances: list[UtteranceScore]
    skipped: list[dict[str, str]]
    audio_seconds: float
    elapsed_seconds: float


def transcribe_and_score(recognizer: Any, ws: Workspace, utterances: Sequence[Utterance],
                         references: Sequence[str], *, progress: bool = True,
                         batch_seconds: float = BATCH_S) -> ScoredTranscripts:
    """Transcribe ``utterances`` with ``recognizer`` and score them against ``references``.

    The one scoring path: the same batches, decoding and counting for training's dev
    evaluation and for `workbench evaluate`.

    Args:
        recognizer: A :class:`workbench.transcribe.Recognizer` (a loaded run, or the model
            being trained).
        ws: The workspace holding the clips.
        utterances: What to score (from :func:`scoring_set`).
        references: Their normalised transcripts, in the same order.
        progress: Show a progress bar.
        batch_seconds: Most padded audio per forward pass.

    Raises:
        WorkbenchError: No clip could be read, or every reference is empty.
    """
    from workbench.transcribe import transcribe_files

    started = time.perf_counter()
    results = transcribe_files([ws.audio_path(u) for u in utterances], recognizer,
                               progress=progress, batch_seconds=batch_seconds)
    elapsed = time.perf_counter() - started
    skipped = [{"id": u.id, "audio": u.audio, "reason": r.error or ""}
               for u, r in zip(utterances, results, strict=True) if not r.ok]
    kept = [i for i, r in enumerate(results) if r.ok]
    if not kept:
        raise WorkbenchError(
            f"None of the {len(utterances)} clips could be read (first: "
            f"{skipped[0]['reason'] if skipped else 'none given'}). Re-run `workbench "
            "prepare` to rebuild the audio cache.",
            page=f"None of the {len(utterances)} clips could be read (first: "
                 f"{skipped[0]['reason'] if skipped else 'none given'}). Import the data "
                 "again in step 1, Data, to rebuild the clips.",
        )
    refs = [references[i] for i in kept]
    hyps = [results[i].text for i in kept]
    scores = per_utterance(refs, hyps, [utterances[i].id for i in kept],
                           [utterances[i].audio for i in kept])
    return ScoredTranscripts(
        rates=error_rates(refs, hyps),
        utterances=[replace(s, index=kept[s.index]) for s in scores],
        skipped=skipped,
        audio_seconds=round(sum(results[i].duration for i in kept), 3),
        elapsed_seconds=round(elapsed, 3),
    )


# ---------------------------------------------------------------------------------------------
# Runs


def resolve_run(ws: Workspace, run: str | Path | None = None) -> Path:
    """The folder of the run to evaluate: ``run`` (name or folder), or the latest with a model.

    Raises:
        WorkbenchError: There is no such run, or no run has a model yet.
    """
    return find_run(ws, run, with_model=True).root


def evaluate_run(
    ws: Workspace,
    run: str | Path | None = None,
    split: str = "test",
    *,
    include_excluded: bool = False,
    exclude_ids: set[str] | None = None,
    progress: bool = True,
    batch_seconds: float = BATCH_S,
    lm: str | Path | None = None,
    beam: Any = None,
) -> EvalReport:
    """Transcribe a split with a run's model, score what the audit kept, store the report.

    Args:
        ws: The workspace.
        run: Run id or folder; None takes the latest run with a model.
        split: Which split to score ("test" by default; "dev" while tuning).
        include_excluded: Also score what the audit set aside.
        exclude_ids: Utterance ids to leave out as well (listed in the report).
        progress: Show a progress bar.
        batch_seconds: Most padded audio per forward pass.
        lm: A language model of the workspace (name or folder): beam search with it, with its
            tuned settings unless ``beam`` (a ``BeamSettings``) is given. None: greedy.

    Returns:
        The report (also stored under ``splits[split]`` in the run's report, next to the
        reports of other splits; ``splits["test+lm:NAME"]`` for LM decoding).

    Raises:
        WorkbenchError: No run or model, an empty split, no readable audio, or references
            that are all empty.
    """
    from workbench.recognizer import load_recognizer
    from workbench.text import load_profile, normalize

    found = find_run(ws, run, with_model=True)
    chosen = scoring_set(ws, split, include_excluded=include_excluded, exclude_ids=exclude_ids)
    profile = load_profile(ws.profile_path)
    references = [normalize(u.text, profile) for u in chosen.utterances]
    recognizer = load_recognizer(found.model_dir)
    decoder = "greedy"
    if lm is not None:
        recognizer, decoder = attach_lm(recognizer, ws, lm, beam)
    scored = transcribe_and_score(recognizer, ws, chosen.utterances,
                                  references, progress=progress, batch_seconds=batch_seconds)
    # index = position in the split's manifest, not among the scored utterances
    utterances = [replace(s, index=chosen.positions[s.id]) for s in scored.utterances]
    report = EvalReport(
        run=found.name,
        run_dir=str(found.root),
        split=split,
        rates=scored.rates,
        utterances=utterances,
        skipped=scored.skipped,
        left_out=chosen.left_out,
        scored_set="audited" if chosen.audited else "all",
        audio_seconds=scored.audio_seconds,
        elapsed_seconds=scored.elapsed_seconds,
        created=time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        decoder=decoder,
    )
    write_report(found.root, report)
    return report


def attach_lm(recognizer: Any, ws: Workspace | None, lm: str | Path, beam: Any = None
              ) -> tuple[Any, str]:
    """``recognizer`` decoding with language model ``lm``; and how to name that decoding."""
    from workbench.lm.store import find_lm, load_decoder, read_info

    folder = find_lm(ws, lm)
    decoder = load_decoder(folder, recognizer.tokenizer, beam)
    s = decoder.settings
    name = (f"lm:{read_info(folder)['name']} ({decoder.unit} LM, alpha {s.alpha:g}, "
            f"beta {s.beta:g}, beam {s.beam})")
    return replace(recognizer, lm=decoder), name


def write_report(run_dir: Path, report: EvalReport) -> Path:
    """Store ``report`` in its run, next to the reports of other splits (an LM decoding's
    report under ``SPLIT+lm:NAME``, beside the greedy one)."""
    return Run(Path(run_dir)).write_report(report_key(report.split, report.decoder),
                                           report.to_dict())


def report_key(split: str, decoder: str = "greedy") -> str:
    """Where a split's report is kept: its name, plus ``+lm:NAME`` for LM decoding."""
    if decoder.startswith("lm:"):
        return f"{split}+{decoder.split(' ')[0]}"
    return split


def read_report(run_dir: Path) -> dict[str, Any]:
    """The per-split reports of a run (empty dict if none)."""
    return Run(Path(run_dir)).read_reports()


# ---------------------------------------------------------------------------------------------
# Display


def format_report(report: EvalReport, top: int = 10) -> str:
    """A plain-text summary for the terminal: rates, counts and the worst utterances.

    CER and GER come first, and the WER last with why it means little, for scripts written
    without spaces between words.
    """
    rates = report.rates
    seconds = report.audio_seconds
    audio = f"{seconds / 60:.1f} min" if seconds >= 60 else f"{seconds:.1f} s"
    lines = [
        f"Run {report.run}, {report.split} split: {rates['utterances']} utterances, "
        f"{audio} of audio ({report.decoder} decoding)",
        *_rate_lines(report),
    ]
    if rates["empty_references"]:
        lines.append(f"  {rates['empty_references']} utterance(s) have an empty reference; "
                     "their hypothesis words count as insertions.")
    if report.left_out:
        lines.append(f"  {len(report.left_out)} utterance(s) not scored (set aside by the "
                     "audit or on request; --include-excluded scores them):")
        lines.extend(f"    {u['id']}: {u['reason']}" for u in report.left_out[:top])
        if len(report.left_out) > top:
            lines.append(f"    ... and {len(report.left_out) - top} more (see the report)")
    if report.skipped:
        lines.append(f"  {len(report.skipped)} utterance(s) skipped, audio unreadable:")
        lines.extend(f"    {s['id']}: {s['reason']}" for s in report.skipped[:top])
    worst = [u for u in report.utterances[:top] if u.words.errors or u.chars.errors]
    if worst:
        lines.append(f"Worst {len(worst)} utterances:")
        for rank, u in enumerate(worst, start=1):
            lines.append(f"  {rank:>2}. {u.id or u.index}  {_utterance_rates(report, u)}")
            lines.append(f"      REF: {u.reference}")
            lines.append(f"      HYP: {u.hypothesis}")
    return "\n".join(lines)


def _rate_lines(report: EvalReport) -> list[str]:
    """One line per rate with its counts; WER first, or last with its note."""
    rates = report.rates
    cer_unit = "reference characters, NFC code points"
    lines = {
        "wer": f"  WER {100 * report.wer:6.2f} %  "
               f"({_count_line(rates['words'], 'reference words')})",
        "cer": f"  CER {100 * report.cer:6.2f} %  "
               f"({_count_line(rates['characters'], cer_unit)})",
    }
    if report.ger is not None:
        lines["ger"] = (f"  GER {100 * report.ger:6.2f} %  "
                        f"({_count_line(rates['graphemes'], 'reference grapheme clusters')})")
    if report.wer_meaningful:
        return list(lines.values())
    wer = lines.pop("wer")
    return [*lines.values(), f"{wer}", f"    WER not meaningful: {rates.get('wer_note', '')}"]


def _utterance_rates(report: EvalReport, u: UtteranceScore) -> str:
    """An utterance's rates in the report's order, with its word or character edits."""
    wer, cer, ger = (f"WER {100 * u.wer:.1f} %", f"CER {100 * u.cer:.1f} %",
                     f"GER {100 * u.ger:.1f} %")
    if report.wer_meaningful:
        return (f"{wer}  {cer}  {ger}  (S {u.words.substitutions}, D {u.words.deletions}, "
                f"I {u.words.insertions})")
    return (f"{cer}  {ger}  (characters: S {u.chars.substitutions}, D {u.chars.deletions}, "
            f"I {u.chars.insertions})  {wer} (not meaningful)")


def _count_line(counts: dict[str, int], unit: str) -> str:
    return (f"S {counts['substitutions']}, D {counts['deletions']}, I {counts['insertions']} "
            f"in {counts['reference']} {unit}")


# ---------------------------------------------------------------------------------------------
# `evaluate` library metrics


def load_metric(name: str) -> Any:
    """The workbench WER, CER or GER as an ``evaluate`` metric, loaded offline from this
    package.

    Args:
        name: "wer", "cer" or "ger".

    Returns:
        An ``evaluate.EvaluationModule``; call ``.compute(predictions=..., references=...)``.

    Raises:
        WorkbenchError: Unknown metric name.
    """
    if name not in METRIC_NAMES:
        raise WorkbenchError(f"Unknown metric {name!r}; choose one of {', '.join(METRIC_NAMES)}.")
    import evaluate

    return evaluate.load(str(METRICS_DIR / f"{name}.py"))
