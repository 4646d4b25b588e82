"""Step 6, Try it: what a run's model hears in one recording."""

from __future__ import annotations

from pathlib import Path

from ui.steps import chosen_run
from workbench.errors import WorkbenchError
from workbench.workspace import Workspace


def transcribe_recording(ws: Workspace, run: str, audio_path: str | Path | None) -> str:
    """Transcribe one recording (any format, rate and channels; long ones in windows).

    Raises:
        WorkbenchError: No recording, an unknown run or one without a model yet, or audio
            that cannot be read.
    """
    from workbench.transcribe import transcribe_files

    if not audio_path:
        raise WorkbenchError("Record something with the microphone or upload a file first.")
    found = chosen_run(ws, run, with_model=True)
    result = transcribe_files([Path(audio_path)], found.model_dir, progress=False)[0]
    if result.error:
        raise WorkbenchError(f"The recording could not be read: {result.error}")
    return result.text
