"""encoder.runtime onnx: the bundled MiniLM exported once and run by ONNX Runtime gives torch's vectors."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from conftest import real_encoder

from agent.config import EncoderSettings
from agent.score import build_encoder
from detectors.encoder import SentenceTransformerEncoder

pytest.importorskip("onnxruntime", reason="the onnx extra is not installed (make test installs it)")

from detectors.onnx_encoder import OnnxEncoder, bundled_model_path, export, export_key

TEXTS = [
    "short",
    "  a much longer text about the capital of France, its museums and its river, with padding spaces  ",
    "パンの焼き方は?",
    "",
    "x " * 400,  # over the token budget: truncated like the torch path
] * 5


@pytest.fixture(scope="module")
def exported(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The bundled model exported once for this module (about 10 s)."""
    return export(bundled_model_path(), tmp_path_factory.mktemp("onnx") / "minilm.onnx")


class TestOnnxEncoder:
    """Same vectors, cached export, one-line refusals."""

    def test_same_rows_as_the_torch_encoder(self, exported: Path) -> None:
        """Every row matches the torch encoder's within 1e-5, in the caller's order, across chunks."""
        ours = OnnxEncoder(onnx_path=exported, batch_size=4).encode(TEXTS)
        ref = real_encoder().encode(TEXTS)
        assert ours.shape == (len(TEXTS), 384) and ours.dtype == np.float32
        np.testing.assert_allclose(ours, ref, atol=1e-5)
        np.testing.assert_allclose(np.linalg.norm(ours, axis=1), 1.0, atol=1e-5)

    def test_export_fuses_attention_and_records_inputs(self, exported: Path) -> None:
        """The BERT optimizer fused MiniLM's 6 attention blocks; the side file names the model's inputs."""
        meta = json.loads(exported.with_suffix(".json").read_text(encoding="utf-8"))
        assert meta["fused"]["Attention"] == 6
        assert set(meta["inputs"]) == {"input_ids", "attention_mask", "token_type_ids"}

    def test_existing_export_is_reused(self, exported: Path) -> None:
        """A second encoder on the same file loads it as is (no re-export: the file is untouched)."""
        before = exported.stat().st_mtime_ns
        OnnxEncoder(onnx_path=exported).encode(["hello"])
        assert exported.stat().st_mtime_ns == before

    def test_empty_input_and_name(self, exported: Path) -> None:
        """No texts give a (0, 0) array without loading anything; the name is the model's, like torch's."""
        enc = OnnxEncoder(onnx_path=exported)
        assert enc.encode([]).shape == (0, 0)
        assert enc.name == SentenceTransformerEncoder().name == "all-MiniLM-L6-v2"

    def test_export_key_follows_the_weights(self, tmp_path: Path) -> None:
        """Different weights give a different cache file name; a directory without weights is a clear error."""
        for name, data in (("a", b"one"), ("b", b"two")):
            (tmp_path / name).mkdir()
            (tmp_path / name / "model.safetensors").write_bytes(data)
        assert export_key(tmp_path / "a").split("-")[1] != export_key(tmp_path / "b").split("-")[1]
        (tmp_path / "empty").mkdir()
        with pytest.raises(FileNotFoundError, match=r"no model\.safetensors"):
            export_key(tmp_path / "empty")

    def test_non_mean_pooling_model_is_refused(self, tmp_path: Path) -> None:
        """A CLS-pooling copy of the model is refused with a message naming runtime torch; no file is left."""
        model = tmp_path / "cls-model"
        shutil.copytree(bundled_model_path(), model)
        pooling = model / "1_Pooling" / "config.json"
        config = json.loads(pooling.read_text(encoding="utf-8"))
        config.update({k: False for k in config if k.startswith("pooling_mode")}, pooling_mode_cls_token=True)
        pooling.write_text(json.dumps(config), encoding="utf-8")
        with pytest.raises(ValueError, match="use runtime torch"):
            export(model, tmp_path / "out" / "cls.onnx")
        assert not (tmp_path / "out" / "cls.onnx").exists()


class TestEncoderSettings:
    """How settings pick the runtime and the batch size."""

    def test_runtime_and_default_batch(self, tmp_path: Path) -> None:
        """The onnx runtime builds an OnnxEncoder; the default batch is 16 on cpu, 128 on cuda; explicit wins."""
        onnx = build_encoder(EncoderSettings(runtime="onnx", onnx_path=tmp_path / "m.onnx"))
        assert isinstance(onnx, OnnxEncoder) and onnx.batch_size == 16 and onnx.onnx_path == tmp_path / "m.onnx"
        torch_cpu = build_encoder(EncoderSettings())
        assert isinstance(torch_cpu, SentenceTransformerEncoder) and torch_cpu.batch_size == 16
        assert getattr(build_encoder(EncoderSettings(device="cuda")), "batch_size", None) == 128
        assert getattr(build_encoder(EncoderSettings(batch_size=48)), "batch_size", None) == 48

    @pytest.mark.parametrize("override", [{"device": "cuda"}, {"precision": "int8"}])
    def test_onnx_is_cpu_fp32_only(self, override: dict[str, str]) -> None:
        """Asking for onnx on a GPU or with another precision is a one-line settings error."""
        with pytest.raises(ValueError, match="onnx runs fp32 on cpu"):
            EncoderSettings.model_validate({"runtime": "onnx", **override})
