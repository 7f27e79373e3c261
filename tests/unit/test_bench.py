"""The throughput means and the bench's result assembly: embedding cache, encoder equivalence, JSON keys."""

from __future__ import annotations

import json

import numpy as np
import pytest

from agent import bench, bench_encoders
from agent.cli import main
from detectors.encoder import CachingEncoder, SentenceTransformerEncoder
from detectors.testing import HashingEncoder

REQUIRED_KEYS = {
    "scoring_samples_per_s", "texts_per_sample", "encoder_ceiling_texts_per_s", "naive_samples_per_s",
    "e2e_samples_per_s", "peak_rss_mb", "device", "cascade_samples_per_s", "full_samples_per_s",
    "cascade_full_fraction", "cascade_flag_agreement", "cascade_vs_full",
}  # fmt: skip


class TestCachingEncoder:
    """Repeated texts cost no inner pass; the cache is bounded (LRU)."""

    def test_repeats_hit_the_cache(self) -> None:
        """A second batch re-encodes only its new texts, in one call, with rows equal to the inner encoder's."""
        inner = HashingEncoder(16)
        enc = CachingEncoder(inner, max_entries=100)
        first = enc.encode(["system prompt", "a", "b"])
        second = enc.encode(["system prompt", "c", "a"])
        assert inner.calls == [["system prompt", "a", "b"], ["c"]]
        np.testing.assert_array_equal(second[0], first[0])
        np.testing.assert_array_equal(second, HashingEncoder(16).encode(["system prompt", "c", "a"]))
        assert (enc.hits, enc.misses) == (2, 4)

    def test_least_recently_used_is_dropped(self) -> None:
        """Beyond max_entries the least recently used text goes; a recently used one stays."""
        inner = HashingEncoder(8)
        enc = CachingEncoder(inner, max_entries=2)
        enc.encode(["x", "y"])
        enc.encode(["x"])  # x is now the most recent
        enc.encode(["z"])  # evicts y
        assert len(enc) == 2
        enc.encode(["x", "y"])
        assert inner.calls[-1] == ["y"]

    def test_bounds_are_checked(self) -> None:
        """A cache of zero entries is refused (disable it with encoder.cache_size 0 instead)."""
        with pytest.raises(ValueError, match="max_entries"):
            CachingEncoder(HashingEncoder(), 0)


class TestEncoderPath:
    """lookout's own length-sorted, overlapped encode loop gives sentence-transformers' embeddings."""

    def test_same_rows_as_sentence_transformers(self) -> None:
        """Rows match SentenceTransformer.encode (normalised) in the caller's order, across several chunks."""
        enc = SentenceTransformerEncoder(batch_size=4)
        texts = ["short", "a much longer text about the capital of France and its museums", "mid length text"] * 3
        texts += ["x " * 400, ""]  # one over the token budget (truncated), one empty
        ours = enc.encode(texts)
        ref = enc._load().encode(texts, batch_size=4, normalize_embeddings=True, convert_to_numpy=True)
        assert ours.shape == (len(texts), 384) and ours.dtype == np.float32
        np.testing.assert_allclose(ours, ref, atol=1e-5)

    def test_int8_refused_off_cpu(self) -> None:
        """int8 dynamic quantization is a CPU path; asking for it on cuda says what to use instead."""
        with pytest.raises(ValueError, match="bf16 or fp16"):
            SentenceTransformerEncoder(device="cuda", precision="int8")


class TestBenchAssembly:
    """A tiny bench run (no broker) produces the table and a JSON line with the required keys."""

    def test_tiny_run(self, capsys: pytest.CaptureFixture[str]) -> None:
        """``lookout bench --samples 8 --no-e2e`` on the committed demo data ends with one JSON object."""
        code = main(["bench", "--samples", "8", "--rounds", "1", "--no-e2e", "--data", str(bench.DEMO)])
        assert code == 0
        lines = capsys.readouterr().out.strip().splitlines()
        result = json.loads(lines[-1])
        assert set(result) >= REQUIRED_KEYS
        assert result["device"] == "cpu" and result["samples"] == 8 and result["e2e_samples_per_s"] is None
        assert result["texts_per_sample"] > 0 and result["naive_texts_per_sample"] > result["texts_per_sample"]
        assert result["scoring_samples_per_s"] > 0 and result["encoder_ceiling_texts_per_s"] > 0
        assert any(line.startswith("encoder ceiling") for line in lines[:-1])
        # without the model's time scoring only gets faster; the consume ceiling needs the broker (skipped)
        assert result["host_ceiling_samples_per_s"] > result["scoring_samples_per_s"]
        assert result["consume_ceiling_records_per_s"] is None and result["kafka_missing"] == []
        # cascade against full on the same 8 records: both timed, a share escalated, flags compared
        assert result["cascade_samples_per_s"] > 0 and result["full_samples_per_s"] > 0
        assert 0 <= result["cascade_full_fraction"] <= 1 and 0 <= result["cascade_flag_agreement"] <= 1
        assert any(line.startswith("cascade scoring") for line in lines[:-1])

    def test_lookup_encoder_gives_the_recorded_vectors(self) -> None:
        """The lookup returns what the recorded run produced, row for row; an unrecorded text is an error."""
        recorder = bench_encoders.RecordingEncoder(HashingEncoder(8))
        recorder.encode(["a", "b"])
        recorder.encode(["c"])
        lookup = bench_encoders.LookupEncoder("hashing", recorder.vectors, 8)
        np.testing.assert_array_equal(lookup.encode(["c", "a"]), HashingEncoder(8).encode(["c", "a"]))
        assert lookup.encode([]).shape == (0, 8)
        with pytest.raises(KeyError):
            lookup.encode(["never encoded"])
        lookup.fallback = HashingEncoder(8)
        np.testing.assert_array_equal(lookup.encode(["new", "a", "new"])[0], HashingEncoder(8).encode(["new"])[0])
        assert lookup.misses == 1 and lookup.encode(["new"]).shape == (1, 8) and lookup.misses == 1

    def test_hh_rlhf_transcripts_become_records(self) -> None:
        """An HH-RLHF transcript becomes history + last human turn as prompt + final assistant turn as response."""
        turns = bench._hh_turns("\n\nHuman: hi\n\nAssistant: hello\n\nHuman: capital of France?\n\nAssistant: Paris.")
        assert turns == (
            [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "hello"},
             {"role": "user", "content": "capital of France?"}],
            "Paris.",
        )  # fmt: skip
        samples = bench.to_samples([{"id": "a", "ts": 1, "messages": turns[0], "response": turns[1]}])
        assert samples[0].prompt == "capital of France?" and len(samples[0].history) == 2


class TestBenchData:
    """The bench runs on what the installed package ships: the demo sample, without its malformed lines."""

    def test_every_record_of_the_demo_sample_decodes(self) -> None:
        """The 8 malformed lines the demo sends to the DLQ on purpose are not bench records.

        Issue 22: the end-to-end step of `lookout bench --quick` on a fresh clone stopped with "78 of the consumed
        records did not decode".
        """
        from agent.decode import decode
        from agent.types import Origin, RawMessage, Sample

        records, source = bench.load_records(10_000)
        assert source == "agent/data/demo_sample.jsonl"
        lines = bench.DEMO.read_text(encoding="utf-8").splitlines()
        assert len(records) == len(lines) - 8
        for i, record in enumerate(records):
            out = decode(RawMessage(Origin("t", 0, i), json.dumps(record).encode(), None))
            assert isinstance(out, Sample), (i, out)


class TestOtlpDecode:
    """``otlp_decode_records_per_s``: the records as OTLP exports, through the decode and trace steps."""

    def test_every_record_comes_out_with_its_context(self) -> None:
        from agent.config_otel import OtelSettings
        from agent.decode import DecodeStep
        from agent.otel.step import TraceStep
        from agent.otel.synthetic import exports, measure_decode
        from agent.step import BatchState
        from agent.types import Origin, RawMessage

        records, _ = bench.load_records(40)
        assert measure_decode(records, rounds=1) > 0
        batch = BatchState.of([RawMessage(Origin("b", 0, i), v) for i, v in enumerate(exports(records))])
        DecodeStep(format="auto").apply(batch)
        TraceStep(OtelSettings(trace_wait_s=0)).apply(batch)
        by_response = {s.response: s for s in batch.samples}
        assert len(batch.samples) == len(records) and not batch.dead_letters
        for r in records:
            assert by_response[r["response"]].context == tuple(r.get("context") or ())

    def test_a_record_that_does_not_come_out_stops_the_bench(self) -> None:
        from agent.otel.synthetic import measure_decode

        with pytest.raises(RuntimeError, match="OTLP records decoded"):
            measure_decode([{"id": "x", "prompt": "", "response": "r"}], rounds=1)

    def test_the_share_of_end_to_end_is_in_the_json(self) -> None:
        result = bench.BenchResult(
            device="cpu", precision="fp32", data="d", runtime="torch", encoder_batch_size=16, samples=1, batch_size=1,
            scoring_samples_per_s=1.0, texts_per_sample=1.0, encoder_ceiling_texts_per_s=1.0, naive_samples_per_s=1.0,
            naive_texts_per_sample=1.0, e2e_samples_per_s=30.0, peak_rss_mb=1.0, cache_hit_rate=0.0,
            otlp_decode_records_per_s=3000.0,
        )  # fmt: skip
        assert result.as_json()["otlp_decode_share_of_e2e"] == 0.01
