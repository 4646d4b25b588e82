"""The audit's data model: its limits, options and report (what ``audit.json`` holds).

The checks that fill a report are ``checks.py`` (one utterance at a time) and ``corpus.py``
(the corpus as a whole, and the summaries); ``format.py`` prints one for the terminal.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import asdict, dataclass, field, fields

from workbench.audio import CONV_KERNELS, CONV_STRIDES, SAMPLE_RATE
from workbench.errors import WorkbenchError

# Limits (each overridable through AuditOptions).
MAX_DURATION_S = 20.0  # longer clips blow up GPU memory in a batch; cut them first
SILENCE_RMS_DB = -50.0  # dBFS; quieter than this is (nearly) silence
SILENCE_PEAK = 1e-3  # largest |sample| below this is silence whatever the RMS says
MAX_CLIPPED_FRACTION = 0.001  # share of samples at full scale above which we warn
HISTOGRAM_BIN_S = 1.0
# Speaking rate in characters (not spaces) of the normalised transcript per second of audio.
# Fluent speech runs at about 10-15; a lone elicited word in a 2-3 s clip at 1.5-3.
MIN_CHARS_PER_SECOND = 1.0  # slower: most of the clip is not in its transcript
MAX_CHARS_PER_SECOND = 30.0  # faster than anyone speaks: the transcript is longer than the audio
MAX_RATE_Z = 3.5  # robust z-score of the log rate (median/MAD) beyond which a clip stands out
MIN_UTTERANCES_FOR_RATE_STATS = 10  # fewer: only the absolute limits apply
MAD_TO_SIGMA = 0.6745  # 0.6745 * (x - median) / MAD is a z-score for normal data
# Floor of the MAD of log rates: in a very even corpus (one voice reading) a clip 20% off the
# median would otherwise stand out; with the floor it takes about 1.7 times (or 1/1.7).
MIN_LOG_RATE_MAD = 0.1
MIN_TRAIN_MINUTES = 2.0  # less training audio than this is flagged
PRACTICAL_TRAIN_MINUTES = 10.0  # named in the advice: a practical minimum for XLS-R

EXCLUDED = "excluded from training"
WARNED = "kept (warning)"

# Order in which checks are reported.
CHECKS = (
    "truncated",
    "segment_cut_short",
    "empty_audio",
    "nan",
    "silent",
    "clipped",
    "too_long",
    "too_short_for_ctc",
    "empty_transcript",
    "chars_per_second",
    "duplicate_audio",
)
# Order in which corpus-level findings are reported.
CORPUS_CHECKS = (
    "little_training_audio",
    "single_speaker",
    "unknown_speakers",
    "speaker_leak",
    "audio_leak",
    "duplicate_transcript",
)
HELD_OUT = ("dev", "test")


@dataclass(frozen=True)
class AuditOptions:
    """Thresholds of the audit; the defaults are the module constants.

    Attributes:
        max_duration: Clips longer than this many seconds are excluded.
        silence_rms_db: Clips with an RMS level below this (dBFS) are silent.
        silence_peak: Clips whose largest absolute sample is below this are silent.
        max_clipped_fraction: Warn when a larger share of samples is at full scale.
        sample_rate: Sample rate of the cached clips.
        conv_kernels: Kernel sizes of the model's convolutional feature encoder.
        conv_strides: Strides of the same layers.
        histogram_bin: Width of a duration histogram bin in seconds.
        min_chars_per_second: Warn about clips whose transcript is slower than this.
        max_chars_per_second: Warn about clips whose transcript is faster than this.
        max_rate_z: Warn about clips whose speaking rate lies further than this (robust
            z-score of the log rate) from the rest of the corpus.
        min_train_minutes: Warn when the kept training audio is shorter than this.
    """

    max_duration: float = MAX_DURATION_S
    silence_rms_db: float = SILENCE_RMS_DB
    silence_peak: float = SILENCE_PEAK
    max_clipped_fraction: float = MAX_CLIPPED_FRACTION
    sample_rate: int = SAMPLE_RATE
    conv_kernels: tuple[int, ...] = CONV_KERNELS
    conv_strides: tuple[int, ...] = CONV_STRIDES
    histogram_bin: float = HISTOGRAM_BIN_S
    min_chars_per_second: float = MIN_CHARS_PER_SECOND
    max_chars_per_second: float = MAX_CHARS_PER_SECOND
    max_rate_z: float = MAX_RATE_Z
    min_train_minutes: float = MIN_TRAIN_MINUTES

    def __post_init__(self) -> None:
        object.__setattr__(self, "conv_kernels", tuple(self.conv_kernels))
        object.__setattr__(self, "conv_strides", tuple(self.conv_strides))
        if self.max_duration <= 0 or self.histogram_bin <= 0 or self.sample_rate <= 0:
            raise WorkbenchError(
                "Audit options max_duration, histogram_bin and sample_rate must be positive."
            )
        if len(self.conv_kernels) != len(self.conv_strides) or not self.conv_kernels:
            raise WorkbenchError(
                "Audit options conv_kernels and conv_strides must list the same number of layers."
            )
        if not 0 <= self.min_chars_per_second < self.max_chars_per_second or self.max_rate_z <= 0:
            raise WorkbenchError(
                "Audit options need 0 <= min_chars_per_second < max_chars_per_second and a "
                "positive max_rate_z."
            )

    @classmethod
    def from_dict(cls, data: dict) -> AuditOptions:
        """Options from their ``to_dict``/JSON form; unknown keys are ignored."""
        names = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in names})


@dataclass(frozen=True)
class Issue:
    """One finding about one utterance."""

    id: str
    split: str
    source: str
    check: str
    detail: str
    action: str


@dataclass
class SplitStats:
    """Counts and seconds of one split (or of all splits together)."""

    utterances: int = 0
    seconds: float = 0.0
    kept: int = 0
    kept_seconds: float = 0.0
    excluded: int = 0
    excluded_seconds: float = 0.0
    speakers: list[str] = field(default_factory=list)
    unknown_speaker_utterances: int = 0


@dataclass
class SpeakerMinutes:
    """Minutes of audio of one speaker ("" stands for utterances without a speaker).

    Attributes:
        speaker: The speaker id, "" for unknown.
        utterances: Utterances over all splits.
        minutes: Minutes over all splits.
        kept_minutes: Minutes over all splits that the audit keeps for training/evaluation.
        split_minutes: Minutes per split (every split of the report, 0.0 where absent).
        split_kept_minutes: Kept minutes per split.
    """

    speaker: str
    utterances: int = 0
    minutes: float = 0.0
    kept_minutes: float = 0.0
    split_minutes: dict[str, float] = field(default_factory=dict)
    split_kept_minutes: dict[str, float] = field(default_factory=dict)


@dataclass(frozen=True)
class CorpusFinding:
    """A finding about the corpus as a whole or about a group of utterances.

    Attributes:
        check: One of :data:`CORPUS_CHECKS`.
        subject: What it is about: a speaker, a transcript, an audio hash; "" for the corpus.
        detail: A readable sentence saying what was found and what it means for the results.
        ids: The utterances concerned (empty when the finding is about the whole corpus).
    """

    check: str
    subject: str
    detail: str
    ids: list[str] = field(default_factory=list)


@dataclass
class AuditReport:
    """Result of :func:`audit_utterances` / :func:`run_audit`.

    Attributes:
        total: Counts over all splits.
        splits: Counts per split.
        histogram: Duration histogram over all splits: {"start", "end", "count", "kept"}.
        split_histograms: The same per split.
        shared_speakers: Speakers found in more than one split -> those splits.
        issues: Every finding, in split and manifest order.
        import_issues: The importer's findings (``import.json``), as it wrote them.
        options: The thresholds used.
        speaker_minutes: Minutes per speaker, most first.
        sample_rates: Sample rates of the source files: {"sample_rate", "utterances",
            "files"}, 0 where unknown.
        channels: Channel counts of the source files: {"channels", "utterances", "files"}.
        findings: Corpus-level findings, in :data:`CORPUS_CHECKS` order.
    """

    total: SplitStats
    splits: dict[str, SplitStats]
    histogram: list[dict]
    split_histograms: dict[str, list[dict]]
    shared_speakers: dict[str, list[str]]
    issues: list[Issue]
    import_issues: list[dict]
    options: AuditOptions
    speaker_minutes: list[SpeakerMinutes] = field(default_factory=list)
    sample_rates: list[dict] = field(default_factory=list)
    channels: list[dict] = field(default_factory=list)
    findings: list[CorpusFinding] = field(default_factory=list)

    def excluded_ids(self) -> set[str]:
        """Ids of utterances left out of training."""
        return {issue.id for issue in self.issues if issue.action == EXCLUDED}

    def check_counts(self) -> dict[str, int]:
        """Number of utterances each check flagged (checks that flagged none are omitted)."""
        counts = Counter(issue.check for issue in self.issues)
        return {check: counts[check] for check in CHECKS if counts[check]}

    def finding_counts(self) -> dict[str, int]:
        """Number of corpus-level findings of each check (checks without any are omitted)."""
        counts = Counter(finding.check for finding in self.findings)
        return {check: counts[check] for check in CORPUS_CHECKS if counts[check]}

    def to_dict(self) -> dict:
        """JSON-ready form of the report."""
        data = asdict(self)
        data["check_counts"] = self.check_counts()
        data["finding_counts"] = self.finding_counts()
        data["excluded_ids"] = sorted(self.excluded_ids())
        return data

