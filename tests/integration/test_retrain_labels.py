"""Retraining a head with the site's review labels, end to end on chDB and the real encoder.

A synthetic shift: on this site, users whose device will not turn on get short troubleshooting steps ("Hold the
power button for ten seconds ...") that share no word with the question. The relevance head trained on the
public data alone (a small fake datasets folder, like ``train-heads``' unit tests) flags those answers as
irrelevant, as it does the site's real misses (newsletter blurbs). Reviewers rejected the first flags and
confirmed the second. ``train-heads --labels`` must move the head toward the labels, ``rescore --head`` must
show it on the held-out labels, and promotion must be explicit, versioned, reversible and loaded by the scorer.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from conftest import real_encoder, seeded_data_dir
from tiny_data import write_public_data, write_toxicity_data

from agent.config import Settings
from agent.review.rules import parse_rules
from agent.review.store import LabelInput, ReviewStore
from agent.review.testing import scored_sample, seed
from agent.score import Scorer
from agent.storage.client import Client
from agent.types import Sample
from detectors.encoder import build_batch
from detectors.head import LogisticHead
from detectors.registry import flag_rule
from detectors.relevance import EmbeddingRelevance
from detectors.toxicity import HeadToxicity
from evaluators import heads
from evaluators.site_labels import held_out

DB = "lookout"
ITEMS = (
    "kettle", "toaster", "blender", "heater", "lamp", "fan", "router", "printer", "camera", "speaker", "charger",
    "monitor", "keyboard", "mouse", "headset", "drone", "scooter", "watch", "tablet", "phone",
)  # fmt: skip
NEWSLETTER = "Our newsletter comes out every Friday with fresh deals."
ANSWERS = (
    ("Hold the power button for ten seconds until the light blinks.", "reject"),  # relevant: the flag was wrong
    ("Unplug it, wait a minute, then plug it back in.", "reject"),
    (NEWSLETTER, "confirm"),  # irrelevant: the flag was right
)
RULES = parse_rules(
    {
        "queues": {"grounding": {"description": "off-topic answers", "sla_hours": 24}},
        "rules": [{"name": "off-topic", "queue": "grounding", "when": {"flagged": "relevance"}}],
    }
)


def site_records() -> list[tuple[str, str, str, str]]:
    """(record id, prompt, response, relevance verdict): every answer was flagged irrelevant at ingest."""
    return [
        (f"s-{i:02d}-{j}", f"My {item} will not turn on, what should I do?", answer, verdict)
        for i, item in enumerate(ITEMS)
        for j, (answer, verdict) in enumerate(ANSWERS)
    ]


def seed_labels(client: Client) -> None:
    """The records, routed as the agent would, and one label each (a few also judge toxicity's silence)."""
    records = site_records()
    seed(client, DB, [scored_sample(rid, response=r, prompt=p, flags=("relevance",), relevance=0.2)
                      for rid, p, r, _ in records], RULES)  # fmt: skip
    store = ReviewStore(client, DB, RULES, clock=lambda: datetime(2026, 12, 1, 9, 0, tzinfo=UTC))
    for n, (rid, _, response, verdict) in enumerate(records):
        # toxicity's silence: confirmed on a few records; on the newsletter blurbs it was wrong (site policy: spam)
        toxicity = "confirm" if n % 10 == 0 else "reject" if response == NEWSLETTER else None
        verdicts = {"relevance": verdict, **({"toxicity": toxicity} if toxicity else {})}
        store.label("alice", LabelInput(f"l-{rid}", "grounding", rid, verdicts, severity=1), override=True)  # type: ignore[arg-type]


@dataclass(frozen=True)
class Site:
    """The seeded store, the public data, a heads folder and the two trained head files."""

    root: Path
    store: Path
    public: Path
    heads: Path
    base: Path
    candidate: Path

    def cli(
        self, *args: str, heads_dir: Path | None = None, store: Path | None = None
    ) -> subprocess.CompletedProcess[str]:
        """``lookout ARGS`` in a subprocess on this site's store (HOME in tmp: the embedding cache stays there)."""
        env = {"LOOKOUT_CLICKHOUSE__DSN": f"chdb://{store or self.store}", "HF_HUB_OFFLINE": "1",
               "PATH": "/usr/bin:/bin", "HOME": str(self.root / "home"),
               "LOOKOUT_DETECTORS__HEADS_DIR": str(heads_dir or self.heads)}  # fmt: skip
        return subprocess.run([sys.executable, "-m", "agent", *args], env=env, capture_output=True, text=True,
                              timeout=600, check=False)  # fmt: skip


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    """Labels in chDB; a public-data head (``base``) and a head trained with the labels (``candidate``)."""
    root = tmp_path_factory.mktemp("site")
    s = Site(root, seeded_data_dir(root / "data", seed_labels), write_public_data(root / "public"),
             root / "heads", root / "base" / "relevance.json", root / "cand" / "relevance.candidate.json")  # fmt: skip
    heads.train_heads(s.public, s.base.parent, ["relevance"], cache_dir=None, report=lambda _: None,
                      encoder=real_encoder())  # fmt: skip
    done = s.cli("train-heads", "--data", str(s.public), "--labels", "--head", "relevance", "--out",
                 str(s.candidate.parent))  # fmt: skip
    assert done.returncode == 0, done.stderr
    train, held = expected_split()
    assert f"relevance: {train} label rows to train on, {held} held out" in done.stderr
    yield s


def expected_split() -> tuple[int, int]:
    ids = [rid for rid, *_ in site_records()]
    return sum(not held_out(i) for i in ids), sum(held_out(i) for i in ids)


def relevance(head: LogisticHead, pairs: list[tuple[str, str]]) -> list[float]:
    """The relevance detector's scores with ``head``, on the real encoder."""
    det = EmbeddingRelevance(head=head)
    items = [Sample(id=str(i), ts=datetime(2026, 12, 1, tzinfo=UTC), prompt=p, response=r) for i, (p, r) in
             enumerate(pairs)]  # fmt: skip
    return [float(s.value or 0.0) for s in det.score(build_batch(items, real_encoder(), det.needs))]


class TestTrainWithLabels:
    """``train-heads --labels`` trains a candidate on the public data plus the labels, and says so."""

    def test_candidate_records_the_labels_it_used(self, site: Site) -> None:
        """Meta: how many label rows, their weight, the split rule and label set; the card has a Site labels part."""
        train, held = expected_split()
        assert train > 30 and held > 10  # the split leaves enough of both
        head = LogisticHead.load(site.candidate)
        meta = head.meta["site_labels"]
        assert (meta["train_rows"], meta["held_out_rows"], meta["weight"]) == (train, held, 5.0)
        assert meta["by_detector"]["relevance"]["train_positive"] == sum(
            1 for rid, _, _, v in site_records() if not held_out(rid) and v == "reject"
        )
        assert "held out" in meta["split"] and len(meta["label_set_sha256"]) == 64
        assert head.version.startswith("site-") and "site_labels" in head.meta["licenses"]
        assert meta["public_version"] != LogisticHead.load(site.base).version
        assert "## Site labels" in site.candidate.with_suffix(".md").read_text()

    def test_candidate_scores_the_site_pattern_as_the_labels_say(self, site: Site) -> None:
        """Held-out troubleshooting answers score higher than with the public head, newsletters stay low."""
        base, cand = LogisticHead.load(site.base), LogisticHead.load(site.candidate)
        held = [(p, r, v) for rid, p, r, v in site_records() if held_out(rid)]
        helpful = [(p, r) for p, r, v in held if v == "reject"]
        blurbs = [(p, r) for p, r, v in held if v == "confirm"]
        assert np.mean(relevance(cand, helpful)) > np.mean(relevance(base, helpful)) + 0.2
        assert min(relevance(cand, helpful)) >= 0.5 > max(relevance(cand, blurbs))

    def test_toxicity_head_learns_the_site_policy(self, site: Site) -> None:
        """The site calls its newsletter blurbs toxic (spam policy): the candidate scores them above the public head.

        The labels reject toxicity's silence on those records; the candidate records the label rows it used.
        """
        public = write_toxicity_data(site.public)
        base = heads.train_heads(public, site.root / "tox-base", ["toxicity"], cache_dir=None,
                                 report=lambda _: None, encoder=real_encoder())[0]  # fmt: skip
        done = site.cli("train-heads", "--data", str(public), "--labels", "--head", "toxicity", "--out",
                        str(site.root / "tox"))  # fmt: skip
        assert done.returncode == 0, done.stderr[-2000:]
        cand = LogisticHead.load(site.root / "tox" / "toxicity.candidate.json")
        rows = cand.meta["site_labels"]["by_detector"]["toxicity"]
        assert rows["train"] > 10 and rows["train_positive"] > 5

        def toxicity(head: LogisticHead, text: str) -> float:
            item = [Sample(id="n", ts=datetime(2026, 12, 1, tzinfo=UTC), prompt="hi", response=text)]
            det = HeadToxicity(head=head)
            return float(det.score(build_batch(item, real_encoder(), det.needs))[0].value or 0.0)

        def log_odds(p: float) -> float:
            return float(np.log(p / (1 - p)))

        # the stacker (chosen on public data) damps the head, so compare log-odds: up by more than 2 (x7 the odds)
        assert log_odds(toxicity(cand, NEWSLETTER)) > log_odds(toxicity(base, NEWSLETTER)) + 2
        assert toxicity(cand, "The train was on time and the weather was lovely.") < 0.5


class TestRescoreHead:
    """``rescore --head`` compares the candidate with the head in use, on the held-out labels only."""

    def test_improvement_on_held_out_labels(self, site: Site) -> None:
        """With the public head promoted (in use), the candidate flags fewer good answers and keeps the blurbs."""
        heads = site.root / "heads-rescore"
        assert site.cli("heads", "promote", str(site.base), heads_dir=heads).returncode == 0
        done = site.cli("rescore", "--head", str(site.candidate), "--json", heads_dir=heads)
        assert done.returncode == 0, done.stderr
        doc = json.loads(done.stdout)
        held = expected_split()[1]
        assert (doc["n"], doc["labels"], doc["head"]) == (held, 60, "relevance")
        assert doc["current_source"] == "relevance-v1"
        assert doc["current_version"] == LogisticHead.load(site.base).version
        (rel,) = doc["detectors"]
        default = flag_rule("relevance").default_threshold
        assert (rel["detector"], rel["n"], rel["thresholds"]) == ("relevance", held, [default])
        assert rel["should_flag"] == sum(1 for rid, *_, v in site_records() if held_out(rid) and v == "confirm")
        old, new = rel["current"], rel["candidate"]
        assert new["accuracy"] == 1.0 and new["accuracy"] > old["accuracy"]
        assert new["precision"] == 1.0 and new["precision"] > old["precision"]
        text = site.cli("rescore", "--head", str(site.candidate), heads_dir=heads)
        assert text.returncode == 0 and "accuracy" in text.stdout and "relevance-v1" in text.stdout

    def test_no_labels_prints_n_0(self, site: Site, tmp_path: Path) -> None:
        """A store without labels: one JSON document with n 0, exit 0."""
        empty = seeded_data_dir(tmp_path / "empty", lambda c: None)
        (tmp_path / "heads").mkdir()  # an empty heads folder: the shipped heads are in use
        done = site.cli("rescore", "--head", str(site.candidate), "--json", store=empty, heads_dir=tmp_path / "heads")
        assert done.returncode == 0, done.stderr
        assert json.loads(done.stdout)["n"] == 0 and json.loads(done.stdout)["detectors"] == []

    def test_bad_arguments_are_one_line(self, site: Site) -> None:
        """--head with --since, or neither --head nor --since, is refused with one line."""
        done = site.cli("rescore", "--head", str(site.candidate), "--since", "7d")
        assert done.returncode == 1 and "it takes no --since" in done.stderr
        done = site.cli("rescore")
        assert done.returncode == 1 and "rescore needs --since and --detector" in done.stderr


class TestPromotion:
    """Promotion is explicit, versioned and reversible; the scorer loads the active version."""

    def test_promote_list_rollback_and_the_scorer(self, site: Site) -> None:
        """Base → v1, candidate → v2 (active, used by the scorer); rollback → v1, → shipped."""
        assert site.cli("heads", "promote", str(site.base)).returncode == 0
        done = site.cli("heads", "promote", str(site.candidate))
        assert done.returncode == 0 and "as relevance-v2" in done.stderr
        listed = json.loads(site.cli("heads", "list", "--json").stdout)
        rel = next(h for h in listed["heads"] if h["head"] == "relevance")
        assert rel["active"] == "relevance-v2" and rel["history"] == ["relevance-v1", "relevance-v2"]
        assert rel["versions"][1]["site_label_rows"] == expected_split()[0]

        versions = scorer_versions(site.heads, score=True)
        assert versions["relevance"] == f"head-{LogisticHead.load(site.candidate).version}"

        assert site.cli("heads", "rollback").returncode == 0
        assert scorer_versions(site.heads)["relevance"] == f"head-{LogisticHead.load(site.base).version}"
        done = site.cli("heads", "rollback", "relevance")
        assert done.returncode == 0 and "the shipped head" in done.stderr
        shipped = scorer_versions(None)["relevance"]
        assert scorer_versions(site.heads)["relevance"] == shipped
        done = site.cli("heads", "rollback", "relevance")
        assert done.returncode == 1 and "already uses the shipped head" in done.stderr
        assert "relevance: shipped active" in site.cli("heads", "list").stdout


def scorer_versions(heads_dir: Path | None, score: bool = False) -> dict[str, Any]:
    """The detector versions the agent's scorer stores with a record (``score``: from a scored record)."""
    settings = Settings(detectors={"enabled": ("relevance", "hallucination"), "heads_dir": heads_dir})
    scorer = Scorer.from_settings(settings)
    if not score:
        return {d.name: d.version for d in scorer.detectors}
    sample = Sample(
        id="x", ts=datetime(2026, 12, 1, tzinfo=UTC), prompt="My lamp will not turn on?", response="Unplug it."
    )
    (scored,) = scorer.score([sample])
    return dict(scored.versions)
