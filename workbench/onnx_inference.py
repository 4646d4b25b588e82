"""Run an exported CTC model (see :mod:`workbench.onnx_export`) with ONNX Runtime on CPU.

The session takes what the processor makes (``input_values`` and, for layer-norm models,
``attention_mask``) as numpy arrays and returns ``(batch, frames, vocab)`` float32 logits, so
:mod:`workbench.transcribe` batches, windows and decodes exactly as it does for the torch
model. onnxruntime is imported only here, when an ONNX model is loaded.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np

from workbench.errors import WorkbenchError

ONNX_FILE = "model.onnx"
INSTALL_HINT = (
    "Running ONNX models needs onnxruntime: `pip install onnxruntime` (CPU), or install the "
    "workbench with its onnx extra."
)


def find_onnx_file(path: Path) -> Path | None:
    """The ``.onnx`` file ``path`` names or holds as ``model.onnx``; None if neither."""
    if path.is_file() and path.suffix == ".onnx":
        return path
    if path.is_dir() and (path / ONNX_FILE).is_file():
        return path / ONNX_FILE
    return None


def default_threads() -> int:
    """Threads for one inference session: the CPU cores this process may use."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # macOS, Windows
        return os.cpu_count() or 1


def import_onnxruntime() -> Any:
    """The onnxruntime module, or a WorkbenchError that says how to install it."""
    try:
        import onnxruntime
    except ImportError as err:
        raise WorkbenchError(INSTALL_HINT) from err
    return onnxruntime


def open_session(path: Path, threads: int | None = None) -> Any:
    """An ONNX Runtime CPU session over the local file ``path``.

    Args:
        path: A ``.onnx`` file on this machine (nothing is fetched from anywhere).
        threads: Intra-op threads; None means every core this process may use.

    Raises:
        WorkbenchError: onnxruntime is missing, or the file is not a readable ONNX model.
    """
    ort = import_onnxruntime()
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads or default_threads()
    options.inter_op_num_threads = 1
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    errors = _ort_errors(ort)
    try:
        return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    except errors as err:
        raise WorkbenchError(
            f"{path} is not an ONNX model ONNX Runtime can run ({_first_line(err)}). Export "
            "one with `workbench export RUN_OR_MODEL_DIR --onnx`."
        ) from err


def _ort_errors(ort: Any) -> tuple[type[BaseException], ...]:
    """ONNX Runtime's load errors (pybind classes that do not share a base of their own)."""
    state = ort.capi.onnxruntime_pybind11_state
    names = ("Fail", "InvalidArgument", "NoSuchFile", "NoModel", "InvalidProtobuf",
             "InvalidGraph", "NotImplemented", "RuntimeException")
    return tuple(getattr(state, n) for n in names if hasattr(state, n)) + (RuntimeError,)


def _first_line(err: BaseException) -> str:
    return str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__


class OnnxCTC:
    """An exported CTC model in an ONNX Runtime session, with its transformers config.

    Attributes:
        session: The ``onnxruntime.InferenceSession``.
        config: The model's ``PretrainedConfig`` (frame arithmetic, vocabulary size, norm).
        path: The ``.onnx`` file.
    """

    def __init__(self, session: Any, config: Any, path: Path) -> None:
        self.session = session
        self.config = config
        self.path = path
        self.input_names = [i.name for i in session.get_inputs()]
        if "input_values" not in self.input_names:
            raise WorkbenchError(
                f"{path} takes inputs {self.input_names}, not the input_values of a "
                "wav2vec2-family CTC model; export it with `workbench export --onnx`."
            )

    @property
    def takes_attention_mask(self) -> bool:
        return "attention_mask" in self.input_names

    def logits(self, input_values: np.ndarray, attention_mask: np.ndarray | None) -> np.ndarray:
        """``(batch, frames, vocab)`` float32 logits of a padded batch.

        Args:
            input_values: ``(batch, samples)`` normalised audio, float32.
            attention_mask: ``(batch, samples)`` 1 for real samples, 0 for padding; ignored
                when the graph has no such input (group-norm models batch equal lengths only).
        """
        feeds = {"input_values": np.ascontiguousarray(input_values, dtype=np.float32)}
        if self.takes_attention_mask:
            if attention_mask is None:
                attention_mask = np.ones(input_values.shape, dtype=np.int64)
            feeds["attention_mask"] = np.ascontiguousarray(attention_mask, dtype=np.int64)
        return self.session.run(None, feeds)[0]


def load_onnx_model(path: Path, config: Any, threads: int | None = None) -> OnnxCTC:
    """Open ``path`` (a ``.onnx`` file) as an :class:`OnnxCTC` with ``config``."""
    return OnnxCTC(open_session(path, threads), config, path)
