"""Review labels as head training rows: verdict → label, the held-out split, weights, and the trainers' hooks."""

from __future__ import annotations

import json
import types
from datetime import UTC, date, datetime
from pathlib import Path

import numpy as np
import pytest

from agent.errors import ConfigError
from detectors.encoder import build_batch
from detectors.hallucination import HeadHallucination
from detectors.head import HEADS_DIR, LogisticHead
from detectors.relevance import FEATURES as RELEVANCE_FEATURES
from detectors.relevance import EmbeddingRelevance
from detectors.testing import HashingEncoder
from evaluators import heads, rescore_head
from evaluators.site_labels import (
    HELD_OUT_BUCKETS,
    LabelRow,
    SiteLabels,
    SiteRows,
    Turn,
    card_section,
    held_out,
    label_set_digest,
    stamp,
    usable,
)
from evaluators.training import hallucination as hal_training
from evaluators.training import relevance as rel_training

AT = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)


def row(
    rid: str = "r1",
    detector: str = "toxicity",
    verdict: str = "confirm",
    flagged: bool = True,
    prompt: str = "a prompt",
    response: str = "a response",
    context: tuple[str, ...] = (),
) -> LabelRow:
    head = {"prompt_toxicity": "toxicity"}.get(detector, detector)
    return LabelRow(rid, detector, head, verdict, flagged, AT, prompt, response, context)


def ids_by_split(n: int, want_held: bool) -> list[str]:
    """The first ``n`` ids ``s-<i>`` that are (or are not) held out."""
    return [f"s-{i}" for i in range(1000) if held_out(f"s-{i}") == want_held][:n]


class TestVerdictToLabel:
    """A verdict and the ingest flag give the truth; the head's label follows the head's direction."""

    @pytest.mark.parametrize(
        ("flagged", "verdict", "should_flag"),
        [(True, "confirm", True), (True, "reject", False), (False, "confirm", False), (False, "reject", True)],
    )
    def test_should_flag_table(self, flagged: bool, verdict: str, should_flag: bool) -> None:
        """Flagged+confirm and a rejected silence (a miss) should be flagged; the other two should not."""
        for detector in ("toxicity", "prompt_toxicity", "hallucination", "relevance"):
            r = row(detector=detector, verdict=verdict, flagged=flagged)
            assert r.should_flag is should_flag
            expected = int(not should_flag) if detector == "relevance" else int(should_flag)
            assert r.label == expected, detector

    def test_relevance_label_is_relevance(self) -> None:
        """A rejected relevance flag means the response was relevant: label 1 for the relevance head."""
        assert row(detector="relevance", verdict="reject", flagged=True).label == 1
        assert row(detector="relevance", verdict="reject", flagged=False).label == 0

    def test_rows_need_the_text_their_detector_reads(self) -> None:
        """Blank prompts, responses or contexts give no row for the detectors that read them."""
        assert usable("prompt_toxicity", "hi", "", ())
        assert not usable("toxicity", "hi", "  ", ())
        assert not usable("relevance", "", "an answer", ())
        assert not usable("hallucination", "q", "an answer", (" ",))
        assert usable("hallucination", "", "an answer", ("a passage",))


class TestSplit:
    """The held-out part is a deterministic ~30 % of record ids; training never sees it."""

    def test_held_out_is_deterministic_and_about_30_percent(self) -> None:
        """Same id, same answer; about 3 in 10 of 1000 ids are held out."""
        ids = [f"rec-{i}" for i in range(1000)]
        first = [held_out(i) for i in ids]
        assert first == [held_out(i) for i in ids]
        assert 250 <= sum(first) <= 350
        assert HELD_OUT_BUCKETS == 3

    def test_for_head_drops_held_out_rows_and_other_heads(self) -> None:
        """A head's training rows are its own detectors' rows outside the held-out part."""
        train, held = ids_by_split(3, False), ids_by_split(2, True)
        rows = [row(i, "toxicity") for i in train + held] + [row(train[0], "prompt_toxicity")]
        rows.append(row(train[1], "relevance", verdict="reject"))
        labels = SiteLabels(tuple(rows), weight=4.0)
        site = labels.for_head("toxicity")
        assert [r.record_id for r in site.rows] == [*train, train[0]] and site.weight == 4.0
        assert labels.heads() == ["relevance", "toxicity"]
        summary = labels.summary("toxicity")
        assert (summary["train_rows"], summary["held_out_rows"]) == (4, 2)
        assert summary["by_detector"]["toxicity"] == {"train": 3, "held_out": 2, "train_positive": 3}

    def test_label_set_digest_ignores_order_and_sees_a_changed_verdict(self) -> None:
        """The digest names the set: same rows in another order match, a flipped verdict does not."""
        a, b = row("a"), row("b", verdict="reject")
        assert label_set_digest([a, b]) == label_set_digest([b, a])
        assert label_set_digest([a, b]) != label_set_digest([a, row("b")])


class TestStamp:
    """A head trained with labels is versioned as a site candidate and says what it used."""

    def test_version_meta_and_card(self) -> None:
        """Version ``site-<date>-<hash>``; meta keeps the public fit's version, counts, split and licence."""
        one = np.ones(3)
        head = LogisticHead("relevance", "logit-x", RELEVANCE_FEATURES, np.zeros(3), one, one, 0.0,
                            {"licenses": {"halueval_qa": "MIT"}})  # fmt: skip
        labels = SiteLabels((row(ids_by_split(1, False)[0], "relevance"),), 5.0)
        out = stamp(head, labels, today=date(2026, 12, 3))
        assert out.version.startswith("site-2026-12-03-") and len(out.version) == len("site-2026-12-03-") + 8
        site = out.meta["site_labels"]
        assert site["public_version"] == "logit-x" and site["train_rows"] == 1 and site["weight"] == 5.0
        assert site["labeled_until"] == AT.isoformat()
        assert set(out.meta["licenses"]) == {"halueval_qa", "site_labels"}
        assert head.meta["licenses"] == {"halueval_qa": "MIT"}  # the input is not changed
        assert "## Site labels" in card_section(out) and "| relevance | 1 | 0 | 0 |" in card_section(out)
        json.dumps(out.to_dict())  # the file is plain JSON


def _relevance_data(root: Path, n: int = 30) -> None:
    folder = root / "hallucination" / "halueval_qa"
    folder.mkdir(parents=True)
    lines = [
        json.dumps(
            {
                "knowledge": f"Town{i} lies on river {i}. The mayor of Town{i} is Person{i}.",
                "question": f"Who is the mayor of Town{i}?",
                "right_answer": f"Person{i}",
                "hallucinated_answer": f"The mayor of Town{i} is Someone{i}.",
            }
        )
        for i in range(n)
    ]
    (folder / "qa_one-turn_data.jsonl").write_text("\n".join(lines) + "\n", encoding="utf-8")
    hh = root / rel_training.HH_FILE
    hh.parent.mkdir(parents=True)
    chats = [
        json.dumps({"chosen": f"\n\nHuman: How do I plant tree{i}?\n\nAssistant: Dig a hole for tree{i}."
                    f"\n\nHuman: How deep?\n\nAssistant: Dig the tree{i} hole two feet deep.", "rejected": ""})
        for i in range(n)
    ]  # fmt: skip
    hh.write_text("\n".join(chats) + "\n", encoding="utf-8")


def _begin(root: Path) -> None:
    folder = root / "hallucination" / "begin_dev"
    folder.mkdir(parents=True)
    header = "model_name\tdata_source\tknowledge\tmessage\tresponse\tbegin_label\n"
    for source in ("wow", "cmu", "tc"):
        body = "".join(
            f"m\t{source}\tLake{i} is deep and cold.\tTell me about Lake{i}\t{answer}\t{label}\n"
            for i in range(6)
            for answer, label in ((f"Lake{i} is deep and cold.", "Fully attributable"),
                                  (f"Lake{i} was built by Mayor{i} in 1901.", "Not fully attributable"))
        )  # fmt: skip
        (folder / f"begin_dev_{source}.tsv").write_text(header + body, encoding="utf-8")


class TestRelevanceTrainer:
    """The relevance trainer takes the site's rows as a third weighted source."""

    def test_site_rows_are_a_third_source_with_their_weight(self) -> None:
        """Site pairs weigh W each in the fit; in the shift they hold W*n over all the weight."""
        kinds = ["right answer", "random other", "hh first turn reply", "hh first turn other reply"] + [
            rel_training.SITE_KIND
        ] * 2
        pairs = rel_training.Pairs(["p"] * 6, ["r"] * 6, [1, 0, 1, 0, 1, 1], kinds)
        shares = rel_training.source_shares(pairs, site_weight=3.0)
        assert [round(s, 4) for _, s in shares] == [0.3, 0.1, 0.6]  # public 4 rows vs site 2 x 3
        assert [bool(m[4]) for m, _ in shares] == [False, False, True]
        one = np.ones(1)
        head = LogisticHead("relevance", "t", ("cosine",), np.zeros(1), one, one, 0.0)
        shift, scores = rel_training.balanced_shift(head, pairs, np.zeros((6, 1)), site_weight=3.0)
        assert np.isfinite(shift) and all(np.isfinite(v) for v in scores.values())  # one-class site source

    def test_training_with_site_rows_moves_the_head_toward_them(self, tmp_path: Path) -> None:
        """Irrelevant-looking replies labeled relevant (weight 20) score higher than without the labels."""
        _relevance_data(tmp_path)
        enc = HashingEncoder()
        site = [
            row(rid, "relevance", "reject", True, f"Why is my parcel {i} late?", "Carriers are slow during storms.")
            for i, rid in enumerate(ids_by_split(12, False))
        ]
        plain = rel_training.train(tmp_path, enc, seed=0)
        tuned = rel_training.train(tmp_path, enc, seed=0, site=SiteRows("relevance", tuple(site), 20.0))
        assert tuned.meta["train_pairs"][rel_training.SITE_KIND] == 12
        assert "site label" not in plain.meta["train_pairs"]

        def mean_score(head: LogisticHead) -> float:
            det = EmbeddingRelevance(head=head)
            return float(np.mean([s.value for s in det.score(build_batch(site, enc, det.needs))]))

        assert mean_score(tuned) > mean_score(plain) + 0.2


class TestHallucinationTrainer:
    """The hallucination trainer appends the site's rows with their weight."""

    def test_training_with_site_rows_moves_the_head_toward_them(self, tmp_path: Path) -> None:
        """Faithful paraphrases the public data would flag, labeled supported, score lower after training."""
        _relevance_data(tmp_path)
        _begin(tmp_path)
        enc = HashingEncoder()
        site = [
            row(
                rid,
                "hallucination",
                "reject",
                True,
                "q",
                f"Customers{i} may return Gadgets within thirty days.",
                (f"Returns are accepted for 30 days after delivery of order {i}.",),
            )
            for i, rid in enumerate(ids_by_split(12, False))
        ]
        assert all(r.label == 0 for r in site)
        plain = hal_training.train(tmp_path, enc, seed=0)
        tuned = hal_training.train(tmp_path, enc, seed=0, site=SiteRows("hallucination", tuple(site), 20.0))

        def mean_score(head: LogisticHead) -> float:
            det = HeadHallucination(head=head)
            return float(np.mean([s.value for s in det.score(build_batch(site, enc, det.needs))]))

        assert mean_score(tuned) < mean_score(plain) - 0.2


class TestSiteHeads:
    """Which heads ``train-heads --labels`` trains."""

    def test_a_named_head_without_rows_is_an_error(self) -> None:
        """Naming a head the labels do not cover says so in one line."""
        labels = SiteLabels((row(ids_by_split(1, False)[0], "relevance", "reject"),))
        assert heads.site_heads(labels, ["relevance", "hallucination"], False, lambda _: None) == ["relevance"]
        with pytest.raises(ConfigError, match="no labeled records for the hallucination head"):
            heads.site_heads(labels, ["hallucination"], True, lambda _: None)

    def test_a_trainer_without_the_hook_is_not_yet_supported(self, monkeypatch: pytest.MonkeyPatch) -> None:
        """A trainer whose ``train`` takes no ``site`` rows: explicit → error, implicit → skipped with a line."""

        def train(data_dir: Path, encoder: object, seed: int = 0, cache_dir: Path | None = None) -> None:
            """A trainer without the hook."""

        fake = types.SimpleNamespace(train=train)
        real = heads._module
        monkeypatch.setattr(heads, "_module", lambda name: fake if name == "toxicity" else real(name))
        labels = SiteLabels((row(ids_by_split(1, False)[0], "toxicity"), row(ids_by_split(1, False)[0], "relevance")))
        lines: list[str] = []
        assert heads.site_heads(labels, ["toxicity", "relevance"], False, lines.append) == ["relevance"]
        assert lines and "not supported yet" in lines[0]
        with pytest.raises(ConfigError, match="toxicity head with site labels is not supported yet"):
            heads.site_heads(labels, ["toxicity"], True, lines.append)

    def test_candidates_never_go_over_the_shipped_heads(self, tmp_path: Path) -> None:
        """--labels with --out at the shipped heads folder is refused before anything is trained."""
        for name in ("toxicity", "hallucination", "relevance"):
            (tmp_path / name).mkdir()
        labels = SiteLabels((row(ids_by_split(1, False)[0], "relevance", "reject"),))
        with pytest.raises(ConfigError, match="candidate"):
            heads.train_heads(tmp_path, out_dir=HEADS_DIR, names=["relevance"], labels=labels)


class TestMetrics:
    """``rescore --head``'s numbers on a hand-computed example."""

    def test_metrics_exact(self) -> None:
        """4 records, 2 should flag; flags on records 0 and 2: accuracy 0.5, precision 0.5, recall 0.5."""
        m = rescore_head.metrics([True, True, False, False], [0.9, 0.2, 0.8, 0.1], [True, False, True, False])
        assert (m.accuracy, m.precision, m.recall, m.flagged) == (0.5, 0.5, 0.5, 2)
        assert m.auc == 0.75

    def test_one_class_and_no_flags(self) -> None:
        """No AUC with one class; no precision without a flag."""
        m = rescore_head.metrics([False, False], [0.1, 0.2], [False, False])
        assert (m.auc, m.precision, m.recall, m.accuracy) == (None, None, None, 1.0)

    def test_threshold_lookup_prefers_tenant_then_deployment_then_default(self) -> None:
        """Tenant override, then the deployment's threshold, then the detector's default."""
        look = rescore_head.threshold_lookup({"toxicity": 0.7}, {"acme": {"toxicity": 0.4}})
        assert (look("toxicity", "acme"), look("toxicity", "other"), look("relevance", "acme")) == (0.4, 0.7, 0.26)


def test_turns_feed_the_relevance_rows() -> None:
    """A row's earlier turns become the pair's previous user and assistant turns."""
    r = LabelRow("x", "relevance", "relevance", "reject", True, AT, "How deep?", "Two feet.", (),
                 (Turn("user", "How do I plant a tree?"), Turn("assistant", "Dig a hole.")))  # fmt: skip
    pairs = rel_training.site_pairs(SiteRows("relevance", (r,), 5.0))
    assert (pairs.users, pairs.assistants, pairs.labels) == (["How do I plant a tree?"], ["Dig a hole."], [1])
