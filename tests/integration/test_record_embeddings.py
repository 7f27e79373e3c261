"""The agent stores each batch's embeddings in ``record_embeddings`` (real chDB), from the scorer's one encoder pass."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from agent.app import embedding_sink
from agent.config import ClickHouseSettings, load_settings
from agent.decode import DecodeStep
from agent.score import Scorer, ScoreStep
from agent.sinks.clickhouse import RecordSink
from agent.sinks.embeddings import EmbeddingSink
from agent.step import Step
from agent.storage import migrations
from agent.storage.client import Client, connect
from agent.store import StoreStep
from agent.testing import ListSink, ListSource, loop, messages
from agent.types import DeadLetter
from detectors.relevance import EmbeddingRelevance
from detectors.testing import HashingEncoder
from evaluators.stored import load_embeddings

DB = "lookout"


def record(i: int) -> bytes:
    return json.dumps({
        "id": f"r{i}", "ts": 1_764_000_000_000 + i, "tenant": "acme", "model": "m1", "route": "chat",
        "prompt": f"question {i} about invoices", "response": f"answer {i} about refunds",
    }).encode()  # fmt: skip


@pytest.fixture
def client(tmp_path: Path) -> Iterator[Client]:
    c = connect(ClickHouseSettings(dsn=f"chdb://{tmp_path / 'data'}"))
    migrations.migrate(c, DB)
    yield c
    c.close()


class TestRecordEmbeddings:
    """Per-record vectors written beside the records, before the commit."""

    def test_agent_stores_the_vectors_it_scored_with(self, client: Client) -> None:
        """Each record gets its prompt and response vector (Int8, round trip cos > 0.999); no second encode."""
        encoder = HashingEncoder()
        scorer = Scorer([EmbeddingRelevance()], encoder)
        records = RecordSink(client, DB, ["relevance"])
        sink = EmbeddingSink(client, DB, encoder.name, ("prompt", "response"))
        dead: ListSink[DeadLetter] = ListSink("dlq")
        steps: list[Step] = [DecodeStep(), ScoreStep(scorer), StoreStep(records, [dead], embedding_sink=sink)]
        agent = loop(ListSource(messages([record(i) for i in range(7)])), steps, max_records=3)
        agent.run(exit_when_idle=0.05)
        assert len(encoder.calls) == 3  # one call per batch: the scorer's own pass
        n = client.query("SELECT field, count() FROM lookout.v_record_embeddings GROUP BY field ORDER BY field")
        assert [tuple(r) for r in n.result_rows] == [("prompt", 7), ("response", 7)]
        ids = [f"r{i}" for i in range(7)]
        stored = load_embeddings(client, DB, ids, "prompt", encoder.name)
        fresh = HashingEncoder().encode([f"question {i} about invoices" for i in range(7)])
        cos = [float(np.dot(stored[rid], fresh[i])) for i, rid in enumerate(ids)]
        assert min(cos) > 0.999
        assert load_embeddings(client, DB, ids, "prompt", "another-encoder") == {}

    def test_store_is_on_by_default_and_can_be_turned_off(self, client: Client) -> None:
        """Default settings build the sink and make the scorer embed both fields; store=false builds none."""
        settings = load_settings(detectors={"enabled": ["refusal"]}, drift={"enabled": False})
        scorer = Scorer.from_settings(settings)
        sink = embedding_sink(settings, client, scorer)
        assert sink is not None and sink.fields == ("prompt", "response")
        assert {"prompt", "response"} <= scorer._fields
        off = settings.with_overrides(embeddings={"store": False})
        assert embedding_sink(off, client, Scorer.from_settings(off)) is None
        assert not Scorer.from_settings(off)._fields & {"prompt", "response"}
