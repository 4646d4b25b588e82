"""ONNX export and ONNX Runtime inference on a tiny random wav2vec2 CTC model.

One export (through the CLI, about 10-20 s on 2 cores) is shared by the module; the int8
model is quantized from it without torch.
"""

from __future__ import annotations

import contextlib
import io
import json
import sys

import numpy as np
import pytest

from tests.workbench.ctc_fixtures import noise, save_tiny_model
from workbench.audio import SAMPLE_RATE, write_clip
from workbench.cli import main
from workbench.errors import WorkbenchError
from workbench.onnx_export import export_onnx
from workbench.transcribe import (
    clip_logits,
    load_recognizer,
    transcribe_arrays,
    transcribe_files,
    transcribe_long,
)

pytest.importorskip("onnxruntime")
pytest.importorskip("onnxscript")


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    return save_tiny_model(tmp_path_factory.mktemp("tiny") / "model")


@pytest.fixture(scope="module")
def export_run(model_dir, tmp_path_factory):
    """`workbench export MODEL --onnx -o OUT --json`: exit status, stdout summary, OUT."""
    out = tmp_path_factory.mktemp("export") / "onnx"
    stdout = io.StringIO()
    with contextlib.redirect_stdout(stdout):
        status = main(["export", str(model_dir), "--onnx", "-o", str(out), "--json", "-q"])
    return status, stdout.getvalue(), out


@pytest.fixture(scope="module")
def torch_recognizer(model_dir):
    return load_recognizer(model_dir, device="cpu")


@pytest.fixture(scope="module")
def onnx_recognizer(export_run):
    return load_recognizer(export_run[2], threads=1)


@pytest.fixture(scope="module")
def int8_dir(export_run, tmp_path_factory):
    out = tmp_path_factory.mktemp("int8") / "onnx-int8"
    export_onnx(export_run[2], out, int8=True)
    return out


def clips() -> list[np.ndarray]:
    seconds = [1.0, 2.3, 0.7, 1.55, 0.01, 3.0, 1.0]
    return [noise(s, seed) for seed, s in enumerate(seconds)]


def test_cli_export_writes_a_self_contained_folder(export_run, model_dir):
    status, stdout, out = export_run
    assert status == 0
    summary = json.loads(stdout)  # nothing but the JSON summary on stdout
    assert summary["out_dir"] == str(out) and not summary["int8"]
    assert 0 <= summary["max_logit_diff"] < 1e-3
    names = {p.name for p in out.iterdir()}
    assert {"model.onnx", "config.json", "vocab.json", "onnx_export.json"} <= names
    assert not any(name.endswith(".safetensors") for name in names)
    assert json.loads((out / "onnx_export.json").read_text())["source"] == str(model_dir)


def test_onnx_logits_match_torch_on_a_padded_batch(torch_recognizer, onnx_recognizer):
    assert onnx_recognizer.is_onnx and not torch_recognizer.is_onnx
    assert onnx_recognizer.pads_safely and onnx_recognizer.model.takes_attention_mask
    arrays = clips()
    expected = clip_logits(torch_recognizer, arrays)
    got = clip_logits(onnx_recognizer, arrays)  # one padded batch, longest first
    for want, have in zip(expected, got, strict=True):
        assert have.shape == want.shape
        np.testing.assert_allclose(have, want, atol=1e-4)


def test_onnx_recognizer_gives_the_torch_text(torch_recognizer, onnx_recognizer, export_run,
                                              tmp_path):
    arrays = clips()
    texts = transcribe_arrays(torch_recognizer, arrays)
    assert transcribe_arrays(onnx_recognizer, arrays) == texts
    assert transcribe_arrays(onnx_recognizer, arrays, batch_seconds=2.0) == texts
    recording = noise(9.0, 42)  # windows of 4 s with 1 s contexts: the chunking path
    long_text = transcribe_long(torch_recognizer, recording, 4.0, (1.0, 1.0))
    assert transcribe_long(onnx_recognizer, recording, 4.0, (1.0, 1.0)) == long_text
    path = tmp_path / "clip.wav"
    write_clip(path, arrays[1])
    from_file = load_recognizer(export_run[2] / "model.onnx")  # the .onnx file itself
    result = transcribe_files([path], from_file, progress=False)[0]
    assert result.ok and result.text == transcribe_files([path], torch_recognizer,
                                                          progress=False)[0].text


def test_int8_export_quantizes_matmuls_and_mostly_agrees(int8_dir, onnx_recognizer,
                                                         export_run):
    import onnx

    graph = onnx.load(str(int8_dir / "model.onnx")).graph
    ops = {node.op_type for node in graph.node}
    assert "MatMulInteger" in ops or "DynamicQuantizeMatMul" in ops
    fp32_ops = {node.op_type for node in onnx.load(str(export_run[2] / "model.onnx")).graph.node}
    assert "Erf" in fp32_ops and "Erf" not in ops  # the erf GELUs are fused before quantizing
    assert ops & {"Gelu", "BiasGelu"}
    int8_weights = [t for t in graph.initializer if t.data_type == onnx.TensorProto.INT8]
    assert int8_weights
    summary = json.loads((int8_dir / "onnx_export.json").read_text())
    assert summary["int8"] and summary["greedy_agreement"] >= 0.8
    int8 = load_recognizer(int8_dir, threads=1)
    arrays = [a for a in clips() if len(a) > SAMPLE_RATE // 2]
    ref = clip_logits(onnx_recognizer, arrays)
    got = clip_logits(int8, arrays)
    frames = np.concatenate([a.argmax(-1) == b.argmax(-1) for a, b in zip(ref, got,
                                                                            strict=True)])
    assert frames.mean() >= 0.8  # int8 rounding flips only near-ties of the random model
    assert [len(t) for t in transcribe_arrays(int8, arrays)]  # decodes end to end


def test_export_errors_are_actionable(export_run, model_dir, tmp_path, capsys):
    out = export_run[2]
    with pytest.raises(WorkbenchError, match="already an ONNX export"):
        export_onnx(out, tmp_path / "again")
    with pytest.raises(WorkbenchError, match="is the model folder itself"):
        export_onnx(model_dir, model_dir)
    assert main(["export", str(model_dir)]) == 2
    assert "--onnx" in capsys.readouterr().err
    assert main(["export", str(tmp_path / "nowhere"), "--onnx", "-w", str(tmp_path)]) == 2
    assert "No run" in capsys.readouterr().err


def test_bad_onnx_file_and_missing_onnxruntime(export_run, tmp_path, monkeypatch):
    fake = tmp_path / "fake"
    fake.mkdir()
    for item in export_run[2].glob("*.json"):
        (fake / item.name).write_bytes(item.read_bytes())
    (fake / "model.onnx").write_bytes(b"not a protobuf at all")
    with pytest.raises(WorkbenchError, match="not an ONNX model"):
        load_recognizer(fake)
    with pytest.raises(WorkbenchError, match="is a file, not a model folder"):
        load_recognizer(fake / "config.json")
    monkeypatch.setitem(sys.modules, "onnxruntime", None)  # import fails as if not installed
    with pytest.raises(WorkbenchError, match="pip install onnxruntime"):
        load_recognizer(export_run[2])
