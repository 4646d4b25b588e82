"""Step 8, Export: a run's model zipped (Hugging Face or ONNX) and its evaluation as files."""

from __future__ import annotations

import csv
import shutil
import zipfile
from collections.abc import Iterable
from pathlib import Path, PurePosixPath

from ui.steps import chosen_run
from workbench.errors import WorkbenchError
from workbench.run import MODEL
from workbench.workspace import Workspace

CSV_COLUMNS = ["id", "wer", "cer", "ger", "reference", "hypothesis", "reference_words",
               "word_errors", "reference_chars", "char_errors", "reference_graphemes",
               "grapheme_errors", "audio"]


def export_model(ws: Workspace, run: str, dest: Path, *, lm: str | None = None) -> Path:
    """Zip the run's model (Hugging Face format) with its settings, result and reports.

    Args:
        ws: The workspace.
        run: The run's name.
        dest: Folder the zip is written to.
        lm: A language model of the workspace to carry in ``model/lm/`` (its tuned
            settings with it): `workbench transcribe --model` on the unzipped folder uses it.

    Returns:
        The zip file, ``<run>-model.zip``, holding ``<run>/model/...`` with a Hugging Face
        model card (``README.md``: data, settings, greedy and LM scores, limits), and the
        run's configuration, result and evaluation reports where they exist.
    """
    from workbench.lm.store import ARPA, INFO, LEXICON, find_lm, read_info
    from workbench.model_card import model_card

    found = chosen_run(ws, run, with_model=True)
    entries = [(path, PurePosixPath(MODEL, *path.relative_to(found.model_dir).parts))
               for path in _files(found.model_dir) if path.name != "README.md"]
    info = None
    if lm:
        folder = find_lm(ws, lm)
        info = read_info(folder)
        entries += [(folder / name, PurePosixPath(MODEL, "lm", name))
                    for name in (INFO, ARPA, LEXICON) if (folder / name).is_file()]
    entries += [(path, PurePosixPath(path.name))
                for path in (found.config_path, found.result_path, found.report_path)
                if path.is_file()]
    card = model_card(found.root, lm=info)
    return _zip(dest / f"{run}-model.zip", run, entries,
                texts=[(PurePosixPath(MODEL, "README.md"), card)])


def export_onnx_model(ws: Workspace, run: str, dest: Path, *, int8: bool = True,
                      lm: str | None = None) -> Path:
    """Export the run's model to ONNX (int8 matrix products by default) and zip the folder.

    The export is kept in the run (:meth:`~workbench.run.Run.onnx_dir`), so `workbench
    transcribe` can use it too; the zip holds ``model.onnx`` with the processor files, the
    model card (``README.md``) and, with ``lm``, the language model in ``lm/`` (its tuned
    settings and alphabet with it), which transcribing with the folder then uses.

    Raises:
        WorkbenchError: The run has no model yet, an unknown LM, or the export fails its
            check.
    """
    from workbench.lm.store import find_lm
    from workbench.onnx_export import export_onnx

    found = chosen_run(ws, run, with_model=True)
    folder = find_lm(ws, lm) if lm else None
    result = export_onnx(found.root, found.onnx_dir(int8=int8), int8=int8, lm=folder)
    entries = [(path, PurePosixPath(*path.relative_to(found.root).parts))
               for path in _files(result.out_dir)]
    return _zip(dest / f"{run}-{result.out_dir.name}.zip", run, entries)


def export_report(ws: Workspace, run: str, dest: Path) -> list[Path]:
    """The run's evaluation reports as JSON plus one CSV of utterances per evaluated split.

    Raises:
        WorkbenchError: The run was never evaluated.
    """
    found = chosen_run(ws, run)
    reports = found.read_reports()
    if not reports:
        raise WorkbenchError(f"Run {run} has not been evaluated yet: evaluate it in step 6.")
    dest.mkdir(parents=True, exist_ok=True)
    files = [dest / f"{run}-{found.report_path.name}"]
    shutil.copyfile(found.report_path, files[0])
    for split, report in reports.items():
        path = dest / f"{run}-{split.replace('+lm:', '-lm-')}-utterances.csv"
        write_utterance_csv(path, report.get("utterances", []))
        files.append(path)
    return files


def write_utterance_csv(path: Path, utterances: list[dict]) -> None:
    """One row per scored utterance: scores, reference, hypothesis and counts."""
    with open(path, "w", encoding="utf-8", newline="") as out:
        writer = csv.DictWriter(out, fieldnames=CSV_COLUMNS, extrasaction="ignore")
        writer.writeheader()
        writer.writerows(utterances)


def _files(folder: Path) -> list[Path]:
    return [path for path in sorted(folder.rglob("*")) if path.is_file()]


def _zip(target: Path, run: str, entries: Iterable[tuple[Path, PurePosixPath]],
         texts: Iterable[tuple[PurePosixPath, str]] = ()) -> Path:
    """Write ``entries`` (file, name inside ``<run>/``) and ``texts`` (name, UTF-8 text) to
    the zip ``target``."""
    target.parent.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(target, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for path, name in entries:
            archive.write(path, f"{run}/{name}")
        for name, text in texts:
            archive.writestr(f"{run}/{name}", text.encode("utf-8"))
    return target
