"""Step 7, Try it: what a run's model hears in one recording."""

from __future__ import annotations

from pathlib import Path

from ui.steps import chosen_run
from workbench.errors import WorkbenchError
from workbench.workspace import Workspace


def transcribe_recording(ws: Workspace, run: str, audio_path: str | Path | None,
                         lm: str | None = None) -> str | tuple[str, str]:
    """Transcribe one recording (any format, rate and channels; long ones in windows).

    Returns:
        The greedy transcript; with ``lm`` (a language model of the workspace), the greedy
        transcript and the one decoded with the LM. The recording is then read twice, each
        pass streamed with bounded memory as ``transcribe`` does, rather than held whole to
        share one pass of the acoustic model.

    Raises:
        WorkbenchError: No recording, an unknown run or one without a model yet, audio
            that cannot be read, or an LM built for another vocabulary.
    """
    from workbench.evaluate import attach_lm
    from workbench.recognizer import load_recognizer

    if not audio_path:
        raise WorkbenchError("Record something with the microphone or upload a file first.")
    found = chosen_run(ws, run, with_model=True)
    recognizer = load_recognizer(found.model_dir)
    greedy = _transcribe(Path(audio_path), recognizer)
    if lm is None:
        return greedy
    return greedy, _transcribe(Path(audio_path), attach_lm(recognizer, ws, lm)[0])


def _transcribe(path: Path, recognizer) -> str:
    from workbench.transcribe import transcribe_files

    result = transcribe_files([path], recognizer, progress=False)[0]
    if result.error:
        raise WorkbenchError(f"The recording could not be read: {result.error}")
    return result.text
