"""ONNX export and ONNX Runtime inference on a tiny random wav2vec2 CTC model.

One export (through the CLI, about 10-20 s on 2 cores) is shared by the module; the int8
model is quantized from it without torch.
"""

from __future__ import annotations

import contextlib
import io
import json
import sys

import jiwer
import numpy as np
import onnx
import onnxruntime
import onnxscript  # noqa: F401  (required by the exporter: a missing one fails here, loudly)
import pytest

from tests.workbench.ctc_fixtures import VOCAB, noise, save_tiny_model
from workbench.audio import SAMPLE_RATE, write_clip
from workbench.cli import main
from workbench.errors import WorkbenchError
from workbench.onnx_export import CHECK_SECONDS, _example_inputs, check_logits, export_onnx
from workbench.transcribe import (
    clip_logits,
    load_recognizer,
    transcribe_arrays,
    transcribe_files,
    transcribe_long,
)

TOO_SHORT = 4  # index of the 0.01 s clip in clips(): too short for one frame, so no text


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
    """Seven clips of other lengths than the export traced; the fifth makes no frame."""
    seconds = [1.0, 2.3, 0.7, 1.55, 0.01, 3.0, 1.0]
    return [noise(s, seed) for seed, s in enumerate(seconds)]


def assert_real_texts(texts: list[str]) -> None:
    """Text for every clip that makes frames, none for the too-short one, all different."""
    spoken = [t for i, t in enumerate(texts) if i != TOO_SHORT]
    assert texts[TOO_SHORT] == ""
    assert all(len(t) >= 10 for t in spoken), texts  # the random model babbles, never blank
    assert len(set(spoken)) == len(spoken), texts  # each clip its own text


def token_cer(reference: list[str], hypothesis: list[str]) -> float:
    """CER over the non-empty references, ``[UNK]`` counted as one character (one token)."""
    pairs = [(r.replace("[UNK]", "?"), h.replace("[UNK]", "?"))
             for r, h in zip(reference, hypothesis, strict=True) if r]
    return jiwer.cer([r for r, _ in pairs], [h for _, h in pairs])


def test_cli_export_writes_a_self_contained_folder(export_run, model_dir):
    status, stdout, out = export_run
    assert status == 0
    summary = json.loads(stdout)  # nothing but the JSON summary on stdout
    assert summary["out_dir"] == str(out) and not summary["int8"]
    assert 0 <= summary["max_logit_diff"] < 1e-3
    names = {p.name for p in out.iterdir()}
    assert {"model.onnx", "config.json", "vocab.json", "onnx_export.json"} <= names
    assert not any(name.endswith(".safetensors") for name in names)
    metadata = json.loads((out / "onnx_export.json").read_text())
    assert metadata["source"] == str(model_dir)
    assert metadata["max_logit_diff"] == summary["max_logit_diff"]
    assert metadata["onnxruntime"] == onnxruntime.__version__
    graph = onnx.load(str(out / "model.onnx")).graph
    assert [i.name for i in graph.input] == ["input_values", "attention_mask"]
    assert [o.name for o in graph.output] == ["logits"]


def test_the_export_check_refuses_logits_that_differ(torch_recognizer, export_run):
    """check_logits, which every export runs, passes the export and catches a small error."""
    arrays = [noise(s, 7 + i) for i, s in enumerate((1.8, 0.9))]
    inputs = dict(torch_recognizer.feature_extractor(
        arrays, sampling_rate=SAMPLE_RATE, padding=True, return_tensors="np",
        return_attention_mask=True))
    inputs["input_values"] = inputs["input_values"].astype(np.float32)
    inputs["attention_mask"] = inputs["attention_mask"].astype(np.int64)
    expected = torch_recognizer.batch_logits(inputs)
    onnx_path = export_run[2] / "model.onnx"
    assert check_logits(torch_recognizer, onnx_path, inputs, expected) < 1e-4
    short_frames = torch_recognizer.output_frames(len(arrays[1]))
    padding = expected.copy()
    padding[1, short_frames:] += 100.0  # padding frames are not compared
    assert check_logits(torch_recognizer, onnx_path, inputs, padding) < 1e-4
    wrong = expected.copy()
    wrong[1, short_frames - 1, 3] += 0.1  # one logit of the last real frame
    with pytest.raises(WorkbenchError, match="differs from the torch model by up to 0.1"):
        check_logits(torch_recognizer, onnx_path, inputs, wrong)


def test_onnx_logits_match_torch_on_a_padded_batch(torch_recognizer, onnx_recognizer):
    assert onnx_recognizer.is_onnx and not torch_recognizer.is_onnx
    assert onnx_recognizer.pads_safely and onnx_recognizer.model.takes_attention_mask
    arrays = clips()
    expected = clip_logits(torch_recognizer, arrays)
    got = clip_logits(onnx_recognizer, arrays)  # one padded batch, longest first
    for array, want, have in zip(arrays, expected, got, strict=True):
        assert have.shape == want.shape == (torch_recognizer.output_frames(len(array)), len(VOCAB))
        np.testing.assert_allclose(have, want, atol=1e-4)
    assert sum(len(w) for w in expected) > 400  # real frames were compared, not empty arrays


def test_onnx_recognizer_gives_the_torch_text(torch_recognizer, onnx_recognizer, export_run,
                                              tmp_path):
    arrays = clips()
    texts = transcribe_arrays(torch_recognizer, arrays)
    assert_real_texts(texts)
    assert transcribe_arrays(onnx_recognizer, arrays) == texts
    assert transcribe_arrays(onnx_recognizer, arrays, batch_seconds=2.0) == texts
    recording = noise(9.0, 42)  # windows of 4 s with 1 s contexts: the chunking path
    long_text = transcribe_long(torch_recognizer, recording, 4.0, (1.0, 1.0))
    assert len(long_text) > 100
    assert transcribe_long(onnx_recognizer, recording, 4.0, (1.0, 1.0)) == long_text
    path = tmp_path / "clip.wav"
    write_clip(path, arrays[1])
    from_file = load_recognizer(export_run[2] / "model.onnx")  # the .onnx file itself
    assert from_file.is_onnx
    result = transcribe_files([path], from_file, progress=False)[0]
    torch_result = transcribe_files([path], torch_recognizer, progress=False)[0]
    assert result.ok and torch_result.ok and len(result.text) >= 10
    assert result.text == torch_result.text


def weight_matmuls(graph: onnx.GraphProto) -> list[str]:
    """Names of the MatMul nodes whose second input is a stored weight."""
    weights = {t.name for t in graph.initializer}
    return [n.name for n in graph.node if n.op_type == "MatMul" and n.input[1] in weights]


def test_int8_export_quantizes_every_weight_matmul(int8_dir, export_run):
    graph = onnx.load(str(int8_dir / "model.onnx")).graph
    fp32_graph = onnx.load(str(export_run[2] / "model.onnx")).graph
    ops = [node.op_type for node in graph.node]
    fp32_ops = [node.op_type for node in fp32_graph.node]
    # 2 layers x (q, k, v, out, 2 feed-forward) + feature projection + output layer.
    assert len(weight_matmuls(fp32_graph)) == 14
    assert ops.count("MatMulInteger") == 14 and not weight_matmuls(graph)
    assert ops.count("MatMul") == fp32_ops.count("MatMul") - 14  # attention's own products
    assert "Erf" in fp32_ops and "Erf" not in ops  # the erf GELUs are fused before quantizing
    assert ops.count("Gelu") + ops.count("BiasGelu") == fp32_ops.count("Erf")
    int8_weights = {t.name for t in graph.initializer if t.data_type == onnx.TensorProto.INT8}
    assert all(n.input[1] in int8_weights for n in graph.node if n.op_type == "MatMulInteger")
    assert "Conv" in ops and "ConvInteger" not in ops  # the feature encoder stays fp32
    summary = json.loads((int8_dir / "onnx_export.json").read_text())
    assert summary["int8"] and summary["size_mb"] < json.loads(
        (export_run[2] / "onnx_export.json").read_text())["size_mb"]


def test_int8_model_agrees_with_fp32(int8_dir, onnx_recognizer):
    """Int8 rounding may flip near-ties of the random model, and nothing more."""
    int8 = load_recognizer(int8_dir, threads=1)
    summary = json.loads((int8_dir / "onnx_export.json").read_text())
    check_batch = _example_inputs(onnx_recognizer, CHECK_SECONDS)  # what the export measured
    same = onnx_recognizer.batch_logits(check_batch).argmax(-1) == int8.batch_logits(
        check_batch).argmax(-1)
    assert summary["greedy_agreement"] == round(float(same.mean()), 4) >= 0.9  # truthful
    arrays = clips()
    ref = clip_logits(onnx_recognizer, arrays)
    got = clip_logits(int8, arrays)
    frames = np.concatenate([a.argmax(-1) == b.argmax(-1) for a, b in zip(ref, got,
                                                                            strict=True)])
    assert len(frames) > 400 and frames.mean() >= 0.9
    scale = max(float(np.abs(r).max(initial=0.0)) for r in ref)
    assert max(float(np.abs(a - b).max(initial=0.0)) for a, b in zip(ref, got,
                                                                      strict=True)) < 0.1 * scale
    fp32_texts = transcribe_arrays(onnx_recognizer, arrays)
    int8_texts = transcribe_arrays(int8, arrays)
    assert_real_texts(int8_texts)
    assert token_cer(fp32_texts, int8_texts) <= 0.15  # about 0.07 here


def test_export_errors_are_actionable(export_run, model_dir, tmp_path, capsys):
    out = export_run[2]
    with pytest.raises(WorkbenchError, match="already an ONNX export"):
        export_onnx(out, tmp_path / "again")
    with pytest.raises(WorkbenchError, match="is the model folder itself"):
        export_onnx(model_dir, model_dir)
    assert main(["export", str(model_dir)]) == 2
    assert "--onnx" in capsys.readouterr().err
    assert main(["export", str(tmp_path / "nowhere"), "--onnx", "-w", str(tmp_path)]) == 2
    assert "There is no run" in capsys.readouterr().err


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
