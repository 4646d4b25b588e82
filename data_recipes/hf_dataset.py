"""Hugging Face ``datasets`` datasets with an audio column: a ``save_to_disk`` folder or a Hub id.

Layouts read::

    my_dataset/                    Dataset.save_to_disk("my_dataset")
      dataset_info.json            its features: an Audio column, a transcript column...
      state.json
      data-00000-of-00001.arrow

    my_dataset_dict/               DatasetDict.save_to_disk("my_dataset_dict")
      dataset_dict.json            {"splits": ["train", "validation", "test"]}
      train/ validation/ test/     each a dataset folder as above

or a Hub id (``user/name``) on a machine that is online (``datasets.load_dataset``).

The audio is never decoded through ``datasets`` (the workbench decodes it itself): the audio
column is cast to ``Audio(decode=False)``, which gives each row's ``{"path", "bytes"}``.
Embedded bytes are written, one file per row as the rows stream past (the dataset is never
loaded whole), into the workspace::

    <workspace>/sources/hf-<name>-<hash of the source>/<split>/<row>-<name>.<ext>

A path without bytes is read where it is (absolute, or relative to the dataset's folder).

Columns: the audio column by its feature type (``Audio``), the transcript among the usual
names (``TEXT_COLUMNS``: more than one present is ambiguous), the speaker among
``SPEAKER_COLUMNS``, or each chosen with ``--audio-column``, ``--text-column``,
``--speaker-column``. A DatasetDict's train, validation and test splits become the
workspace's train, dev and test when all three are there (``--no-source-splits``: split
here); other splits are reported, not imported; ``--split NAME`` imports one split alone.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from data_recipes.common import AUDIO_EXTENSIONS, ImportIssue, SourceRead, SourceRow, safe_id
from data_recipes.table import SPEAKER_COLUMNS, TEXT_COLUMNS
from workbench.errors import WorkbenchError
from workbench.workspace import Workspace

FORMAT = "hf-dataset"
DATASET_FILES = ("dataset_info.json", "state.json")  # Dataset.save_to_disk
DATASET_DICT_FILE = "dataset_dict.json"  # DatasetDict.save_to_disk
# A DatasetDict's split names -> the workspace's splits.
SOURCE_SPLITS = {"train": "train", "validation": "dev", "valid": "dev", "dev": "dev",
                 "test": "test"}
BATCH_ROWS = 64  # rows held in memory at once while the clips are written
_HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]*/[\w.-]+$")
_TRUE = ("1", "ON", "YES", "TRUE")
# Magic bytes -> file suffix, for embedded audio whose path does not say.
_MAGIC = ((b"RIFF", ".wav"), (b"fLaC", ".flac"), (b"OggS", ".ogg"), (b"ID3", ".mp3"),
          (b"\xff\xfb", ".mp3"), (b"\xff\xf3", ".mp3"), (b"\xff\xf2", ".mp3"),
          (b"FORM", ".aiff"), (b"\x1a\x45\xdf\xa3", ".webm"))


@dataclass(frozen=True)
class Columns:
    """Which dataset columns hold the audio, the transcript and the speaker."""

    audio: str
    text: str
    speaker: str | None
    audio_is_feature: bool  # an Audio column (else a column of file paths)


def is_dataset_folder(folder: Path) -> bool:
    """Whether ``folder`` was written by ``Dataset``/``DatasetDict.save_to_disk``."""
    folder = Path(folder)
    return ((folder / DATASET_DICT_FILE).is_file()
            or all((folder / name).is_file() for name in DATASET_FILES))


def is_hub_id(source: str | Path) -> bool:
    """Whether ``source`` reads as a Hub dataset id (``user/name``) and is no local path."""
    text = str(source)
    return bool(_HUB_ID.match(text)) and not Path(text).exists()


def describe(folder: Path) -> tuple[list[str], list[str]]:
    """The columns and split names of a saved dataset, read from its JSON files only.

    Returns ``([], [])`` for what cannot be read (the import then says what is wrong).
    """
    folder = Path(folder)
    splits: list[str] = []
    info_files = [folder / DATASET_FILES[0]]
    try:
        if (folder / DATASET_DICT_FILE).is_file():
            splits = [str(s) for s in json.loads(
                (folder / DATASET_DICT_FILE).read_text(encoding="utf-8"))["splits"]]
            info_files = [folder / s / DATASET_FILES[0] for s in splits
                          if (folder / s).resolve().is_relative_to(folder.resolve())]
        columns: dict[str, None] = {}
        for info in info_files:
            if info.is_file():
                features = json.loads(info.read_text(encoding="utf-8")).get("features") or {}
                columns.update(dict.fromkeys(str(k) for k in features))
    except (OSError, ValueError, KeyError, TypeError):
        return [], []
    return list(columns), splits


def clips_folder(workspace: Workspace, source: str | Path) -> Path:
    """Where the embedded audio of ``source`` is written (the same folder on every import)."""
    from data_recipes import SOURCES_DIR  # the registry imports this module

    key = str(source) if is_hub_id(source) else str(Path(source).resolve())
    digest = hashlib.sha1(key.encode("utf-8")).hexdigest()[:8]
    name = safe_id(Path(str(source)).name)
    return workspace.root / SOURCES_DIR / f"hf-{name}-{digest}"


def read_hf_dataset(source: str | Path, *, workspace: Workspace | None = None,
                    audio_column: str | None = None, text_column: str | None = None,
                    speaker_column: str | None = None, split: str | None = None,
                    use_splits: bool = True) -> SourceRead:
    """Read a saved ``datasets`` dataset (or a Hub id) into rows (see the module docstring).

    Args:
        source: A ``save_to_disk`` folder (Dataset or DatasetDict), or a Hub id.
        workspace: Where embedded audio is written (needed only when there is some).
        audio_column: The audio column (default: the one column of type ``Audio``).
        text_column: The transcript column (default: the one of the usual names).
        speaker_column: The speaker column (default: one of the usual names, else none).
        split: Import only this split (its rows are split here).
        use_splits: Keep train/validation/test as the workspace's train/dev/test.

    Returns:
        The rows, and the issues: rows without audio, splits not imported.

    Raises:
        WorkbenchError: Not a dataset, an offline Hub id, or the columns are ambiguous or
            missing (the message lists the columns).
    """
    splits, name, base = _load(source)
    chosen, issues = _chosen_splits(splits, split, use_splits, source)
    clips = _Clips(workspace, source)
    rows: list[SourceRow] = []
    try:
        for split_name, assigned in chosen:
            dataset = splits[split_name]
            columns = choose_columns(dataset.features, source, audio_column, text_column,
                                     speaker_column)
            label = name if len(splits) == 1 and split is None else f"{name}/{split_name}"
            for index, record in _records(dataset, columns):
                row = _row(record, index, columns, label, split_name, assigned, base, clips)
                (rows if isinstance(row, SourceRow) else issues).append(row)
        clips.commit()
    except BaseException:
        clips.discard()
        raise
    return SourceRead(rows, issues, None, name)


# --------------------------------------------------------------------------- loading


def _load(source: str | Path) -> tuple[dict[str, Any], str, Path | None]:
    """The dataset's splits (name -> Dataset), its name, and its folder (None: the Hub)."""
    folder = Path(source)
    if folder.is_dir():
        if not is_dataset_folder(folder):
            raise WorkbenchError(
                f"{folder}: not a saved Hugging Face dataset (no {DATASET_DICT_FILE}, or "
                f"{' and '.join(DATASET_FILES)}). Save it with `dataset.save_to_disk(FOLDER)` "
                "and give that folder.")
        return _load_folder(folder), folder.name, folder.resolve()
    if folder.exists():
        raise WorkbenchError(f"{folder}: a file, not a dataset; give the folder that "
                             "`dataset.save_to_disk(FOLDER)` wrote.")
    return _load_hub(str(source)), str(source).replace("/", "__"), None


def _load_folder(folder: Path) -> dict[str, Any]:
    from datasets import Dataset, load_from_disk

    _check_inside(folder)
    try:
        loaded = load_from_disk(str(folder))
    except (OSError, ValueError, KeyError, TypeError) as err:
        raise WorkbenchError(
            f"{folder}: cannot read this saved dataset ({type(err).__name__}: {err}). Save it "
            "again with `dataset.save_to_disk(FOLDER)` and bring the whole folder.") from err
    if isinstance(loaded, Dataset):
        return {"": loaded}
    return dict(loaded)


def _check_inside(folder: Path) -> None:
    """Refuse a saved dataset whose JSON files name split folders or data files outside it
    (an uploaded dataset must never make the server read its other files)."""
    def inside(parent: Path, name: Any, what: str) -> Path:
        path = (parent / str(name)).resolve()
        if not isinstance(name, str) or not path.is_relative_to(parent.resolve()):
            raise WorkbenchError(f"{folder}: its {what} names {name!r}, outside the dataset's "
                                 "folder; save the dataset again with save_to_disk.")
        return path

    def data_files(dataset: Path) -> None:
        try:
            state = json.loads((dataset / DATASET_FILES[1]).read_text(encoding="utf-8"))
            names = [entry["filename"] for entry in state.get("_data_files", [])]
        except (OSError, ValueError, KeyError, TypeError, AttributeError):
            return  # load_from_disk says what is wrong with it
        for name in names:
            inside(dataset, name, f"{dataset.name}/{DATASET_FILES[1]}")

    if not (folder / DATASET_DICT_FILE).is_file():
        data_files(folder)
        return
    try:
        splits = json.loads((folder / DATASET_DICT_FILE).read_text(encoding="utf-8"))["splits"]
    except (OSError, ValueError, KeyError, TypeError):
        return
    for split in splits if isinstance(splits, list) else []:
        data_files(inside(folder, split, DATASET_DICT_FILE))


def offline() -> bool:
    """Whether Hugging Face is told to stay offline (HF_HUB_OFFLINE or HF_DATASETS_OFFLINE)."""
    return any(os.environ.get(name, "").strip().upper() in _TRUE
               for name in ("HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE"))


def _offline_message(hub_id: str, why: str) -> str:
    folder = hub_id.rsplit("/", 1)[-1]
    return (f"{hub_id}: no such file or folder here, and {why}, so it cannot be fetched as a "
            "Hugging Face Hub dataset. If it is one, on a connected machine run "
            f"`python -c \"import datasets; datasets.load_dataset('{hub_id}')"
            f".save_to_disk('{folder}')\"`, bring the folder {folder}/ to this machine and "
            "give that folder instead.")


def _load_hub(hub_id: str) -> dict[str, Any]:
    """Every split of a Hub dataset (``datasets.load_dataset``); only when online."""
    if not is_hub_id(hub_id):
        raise WorkbenchError(f"{hub_id}: no such file or folder, and not a Hugging Face Hub "
                             "dataset id (user/name).")
    if offline():
        raise WorkbenchError(_offline_message(hub_id, "this machine is offline "
                                                      "(HF_HUB_OFFLINE is set)"))
    from datasets import Dataset, load_dataset

    try:
        loaded = load_dataset(hub_id)
    except Exception as err:  # noqa: BLE001 - sorted into messages the user can act on
        if _is_connection_error(err):
            raise WorkbenchError(_offline_message(
                hub_id, "the Hugging Face Hub cannot be reached from this machine")) from err
        if type(err).__name__ in ("DatasetNotFoundError", "RepositoryNotFoundError"):
            raise WorkbenchError(
                f"{hub_id}: no such dataset on the Hugging Face Hub, and no such folder here. "
                "Check the name; a private or gated dataset needs `hf auth login` first."
            ) from err
        raise WorkbenchError(f"{hub_id}: could not load it from the Hugging Face Hub "
                             f"({type(err).__name__}: {err}).") from err
    return {"": loaded} if isinstance(loaded, Dataset) else dict(loaded)


def _is_connection_error(err: BaseException | None) -> bool:
    names = ("ConnectionError", "ConnectError", "ConnectTimeout", "Timeout", "ReadTimeout",
             "OfflineModeIsEnabled", "LocalEntryNotFoundError")
    while err is not None:
        if isinstance(err, ConnectionError | TimeoutError) or type(err).__name__ in names:
            return True
        err = err.__cause__ or err.__context__
    return False


def _chosen_splits(splits: dict[str, Any], split: str | None, use_splits: bool,
                   source: str | Path) -> tuple[list[tuple[str, str]], list[ImportIssue]]:
    """The splits to read, each with the workspace split its rows keep ("": split here)."""
    if split is not None:
        if split not in splits:
            raise WorkbenchError(f"{source}: no split named {split!r}; its splits: "
                                 f"{', '.join(splits)}.")
        return [(split, "")], []
    known = [s for s in splits if s in SOURCE_SPLITS]
    if not known:  # a plain Dataset, or splits of other names: all of it, split here
        return [(s, "") for s in splits], []
    issues = [ImportIssue(f"{source}/{s}", "split_not_imported",
                          f"the split {s!r} ({splits[s].num_rows} rows) is not train, "
                          f"validation or test; import it alone with --split {s}")
              for s in splits if s not in SOURCE_SPLITS]
    targets = {SOURCE_SPLITS[s] for s in known}
    keep = use_splits and targets == {"train", "dev", "test"}
    if use_splits and not keep:
        issues.append(ImportIssue(
            str(source), "source_splits_incomplete",
            f"its splits {', '.join(known)} are not all of train, validation and test, so "
            "all its rows were split here", action="imported (split here)"))
    return [(s, SOURCE_SPLITS[s] if keep else "") for s in known], issues


def choose_columns(features: Any, source: str | Path, audio: str | None, text: str | None,
                   speaker: str | None) -> Columns:
    """The audio, transcript and speaker columns of a dataset with ``features``.

    Raises:
        WorkbenchError: A named column is missing, or none or several columns could be
            meant (the message lists the columns and the option that chooses).
    """
    from datasets import Audio

    names = list(features)
    listed = ", ".join(f"{n} ({_kind(features[n])})" for n in names)

    def missing(column: str, what: str) -> WorkbenchError:
        return WorkbenchError(f"{source}: no column named {column!r} for the {what}. "
                              f"Columns: {listed}.")

    if audio is None:
        audio_columns = [n for n in names if isinstance(features[n], Audio)]
        if len(audio_columns) != 1:
            found = "no column of type Audio" if not audio_columns else (
                f"{len(audio_columns)} columns of type Audio ({', '.join(audio_columns)})")
            raise WorkbenchError(f"{source}: {found}. Columns: {listed}. Choose the audio "
                                 "column with --audio-column.")
        audio = audio_columns[0]
    elif audio not in names:
        raise missing(audio, "audio")
    if text is None:
        lowered = {n.lower(): n for n in names if n != audio}
        candidates = [lowered[c] for c in TEXT_COLUMNS if c in lowered]
        if len(candidates) != 1:
            found = ("none of the usual transcript columns (" + ", ".join(TEXT_COLUMNS) + ")"
                     if not candidates else
                     f"several transcript columns ({', '.join(candidates)})")
            raise WorkbenchError(f"{source}: {found}. Columns: {listed}. Choose the "
                                 "transcript column with --text-column.")
        text = candidates[0]
    elif text not in names:
        raise missing(text, "transcript")
    if speaker is None:
        lowered = {n.lower(): n for n in names if n not in (audio, text)}
        speaker = next((lowered[c] for c in SPEAKER_COLUMNS if c in lowered), None)
    elif speaker not in names:
        raise missing(speaker, "speaker")
    return Columns(audio, text, speaker, isinstance(features[audio], Audio))


def _kind(feature: Any) -> str:
    """``string``, ``int64``... for a value column, else the feature type (``Audio``)."""
    from datasets import Value

    return feature.dtype if isinstance(feature, Value) else type(feature).__name__


# --------------------------------------------------------------------------- rows


def _records(dataset: Any, columns: Columns) -> Iterator[tuple[int, dict[str, Any]]]:
    """(row index, {column: value}) for the three columns, a batch in memory at a time."""
    from datasets import Audio

    wanted = [c for c in (columns.audio, columns.text, columns.speaker) if c]
    dataset = dataset.select_columns(list(dict.fromkeys(wanted))).with_format(None)
    if columns.audio_is_feature:
        dataset = dataset.cast_column(columns.audio, Audio(decode=False))
    index = 0
    for batch in dataset.iter(batch_size=BATCH_ROWS):
        for values in zip(*(batch[c] for c in batch), strict=True):
            yield index, dict(zip(batch, values, strict=True))
            index += 1


def _row(record: dict[str, Any], index: int, columns: Columns, label: str, split: str,
         assigned: str, base: Path | None, clips: _Clips) -> SourceRow | ImportIssue:
    item = f"{label}[{index}]"
    audio = record[columns.audio]
    path, data = (audio.get("path"), audio.get("bytes")) if isinstance(audio, dict) else (
        audio, None)
    stem = safe_id(Path(path).stem) if path else f"row{index}"
    local = _local(path, base) if path and not data else None
    if data:
        audio_path = clips.write(split, f"{index:06d}-{stem}", bytes(data), path)
    elif local is not None:
        audio_path = local
    else:
        detail = (f"its audio {path!r} is not embedded in the dataset and not found here; "
                  "bring the audio files, or save the dataset with its audio in it"
                  if path else "the row has no audio")
        return ImportIssue(item, "row_without_audio", detail)
    text = record[columns.text]
    speaker = record[columns.speaker] if columns.speaker else None
    return SourceRow(audio=audio_path, text="" if text is None else str(text),
                     speaker="" if speaker is None else str(speaker).strip(), item=item,
                     utterance_id=f"{split}__{stem}" if split else stem, split=assigned)


def _local(path: str, base: Path | None) -> Path | None:
    """The file a row's path names: absolute, or relative to the dataset's folder."""
    candidate = Path(path)
    if not candidate.is_absolute() and base is not None:
        candidate = base / candidate
    return candidate if candidate.is_file() else None


def _suffix(path: str | None, data: bytes) -> str:
    suffix = Path(path).suffix.lower() if path else ""
    if suffix in AUDIO_EXTENSIONS:
        return suffix
    if data[4:8] == b"ftyp":
        return ".m4a"
    return next((s for magic, s in _MAGIC if data.startswith(magic)), ".audio")


class _Clips:
    """Embedded audio written into a staging folder, moved into place once all is read."""

    def __init__(self, workspace: Workspace | None, source: str | Path) -> None:
        self.workspace = workspace
        self.source = source
        self.final = clips_folder(workspace, source) if workspace is not None else None
        self.staging: Path | None = None

    def write(self, split: str, name: str, data: bytes, path: str | None) -> Path:
        """Write one clip; its path once committed."""
        if self.final is None:
            raise WorkbenchError(
                f"{self.source}: its audio is embedded in the dataset and is written into "
                "the workspace to be read; give the workspace (workbench prepare SOURCE -w "
                "WORKSPACE).")
        if self.staging is None:
            self.final.parent.mkdir(parents=True, exist_ok=True)
            self.staging = self.final.with_name(f".{self.final.name}.partial-{os.getpid()}")
            shutil.rmtree(self.staging, ignore_errors=True)
        relative = Path(split or "all") / f"{name}{_suffix(path, data)}"
        (self.staging / relative).parent.mkdir(parents=True, exist_ok=True)
        (self.staging / relative).write_bytes(data)
        return self.final / relative

    def commit(self) -> None:
        """Replace the clips of an earlier import with these."""
        if self.staging is None:
            return
        if self.final.exists():
            shutil.rmtree(self.final)
        os.replace(self.staging, self.final)
        self.staging = None

    def discard(self) -> None:
        if self.staging is not None:
            shutil.rmtree(self.staging, ignore_errors=True)
            self.staging = None
