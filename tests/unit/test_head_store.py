"""Promoted heads: versions in a folder, a manifest naming the active one, rollback, and the registry loading it."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pytest

from agent.config import Settings
from agent.errors import ConfigError
from agent.score import build_detectors
from detectors import registry
from detectors.head import LogisticHead
from detectors.promoted import MANIFEST, PromotedHeadError, load_active
from detectors.relevance import FEATURES
from evaluators import head_store

AT = datetime(2026, 12, 3, 10, 0, tzinfo=UTC)


def head_file(folder: Path, version: str, name: str = "relevance", features: tuple[str, ...] = FEATURES) -> Path:
    """A relevance head file named ``<version>.json`` (with a model card beside it)."""
    n = len(features)
    head = LogisticHead(name, version, features, np.zeros(n), np.ones(n), np.full(n, 0.5), 0.1,
                        {"site_labels": {"train_rows": 7}})  # fmt: skip
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{version}.json"
    head.save(path)
    path.with_suffix(".md").write_text(f"# card of {version}\n", encoding="utf-8")
    return path


class TestPromoteAndRollback:
    """Promotion adds a version and makes it active; rollback undoes the latest promotion in effect."""

    def test_round_trip(self, tmp_path: Path) -> None:
        """v1, v2 promoted; rollback → v1; promote v3; rollback → v1; rollback → shipped; nothing deleted."""
        heads = tmp_path / "heads"
        first = head_store.promote(heads, head_file(tmp_path / "in", "cand-a"), now=AT)
        assert first["name"] == "relevance-v1" and first["head_version"] == "cand-a" and first["site_label_rows"] == 7
        assert (heads / "relevance-v1.md").read_text() == "# card of cand-a\n"
        head_store.promote(heads, head_file(tmp_path / "in", "cand-b"), now=AT)
        assert load_active(heads, "relevance").version == "cand-b"  # type: ignore[union-attr]
        assert head_store.rollback(heads) == ("relevance-v2", "relevance-v1")
        assert load_active(heads, "relevance").version == "cand-a"  # type: ignore[union-attr]
        head_store.promote(heads, head_file(tmp_path / "in", "cand-c"), now=AT)
        assert head_store.rollback(heads, "relevance") == ("relevance-v3", "relevance-v1")
        assert head_store.rollback(heads, "relevance") == ("relevance-v1", None)
        assert load_active(heads, "relevance") is None
        state = {s.head: s for s in head_store.states(heads)}["relevance"]
        assert state.active is None and [v["name"] for v in state.versions] == [f"relevance-v{i}" for i in (1, 2, 3)]
        assert sorted(p.name for p in heads.glob("relevance-v*.json")) == [f"relevance-v{i}.json" for i in (1, 2, 3)]
        with pytest.raises(ConfigError, match="already uses the shipped head"):
            head_store.rollback(heads, "relevance")

    def test_rollback_needs_a_name_when_several_heads_are_promoted(self, tmp_path: Path) -> None:
        """With two heads promoted, a bare rollback names them instead of guessing."""
        heads = tmp_path / "heads"
        head_store.promote(heads, head_file(tmp_path, "r1"))
        head_store.promote(heads, head_file(tmp_path, "h1", "hallucination", features=_hallucination_features()))
        with pytest.raises(ConfigError, match="hallucination, relevance"):
            head_store.rollback(heads)

    def test_a_file_that_is_not_a_usable_head_is_refused(self, tmp_path: Path) -> None:
        """Wrong features, unknown head names and non-head JSON are one-line errors; nothing is written."""
        heads = tmp_path / "heads"
        with pytest.raises(ConfigError, match="not the detector's"):
            head_store.promote(heads, head_file(tmp_path, "bad", features=("a", "b", "c")))
        with pytest.raises(ConfigError, match="not a promotable head"):
            head_store.promote(heads, head_file(tmp_path, "odd", name="tone"))
        junk = tmp_path / "junk.json"
        junk.write_text("{}", encoding="utf-8")
        with pytest.raises(ConfigError, match="is not a head file"):
            head_store.promote(heads, junk)
        assert not (heads / MANIFEST).exists()


def _hallucination_features() -> tuple[str, ...]:
    from detectors.hallucination import FEATURES as HAL

    return HAL


class TestLoading:
    """The registry (and the agent's scorer) use the active version; a tampered or missing folder is an error."""

    def test_registry_builds_detectors_with_the_active_head(self, tmp_path: Path) -> None:
        """Relevance scores with the promoted head (its version is recorded); others keep the shipped heads."""
        heads = tmp_path / "heads"
        head_store.promote(heads, head_file(tmp_path, "cand-a"))
        options = registry.DetectorOptions(heads_dir=heads)
        assert registry.create("relevance", options).version == "head-cand-a"
        shipped = registry.create("hallucination").version
        assert registry.create("hallucination", options).version == shipped
        assert registry.create("relevance").version != "head-cand-a"

    def test_edited_head_file_is_refused(self, tmp_path: Path) -> None:
        """A promoted file changed after promotion fails its SHA-256 check, and the agent says so in one line."""
        heads = tmp_path / "heads"
        head_store.promote(heads, head_file(tmp_path, "cand-a"))
        data = json.loads((heads / "relevance-v1.json").read_text())
        data["intercept"] = 9.0
        (heads / "relevance-v1.json").write_text(json.dumps(data))
        with pytest.raises(PromotedHeadError, match="changed since it was promoted"):
            load_active(heads, "relevance")
        with pytest.raises(ConfigError, match=r"detectors\.heads_dir: .*changed since it was promoted"):
            build_detectors(["relevance"], registry.DetectorOptions(heads_dir=heads))

    def test_missing_folder_is_an_error_naming_the_fix(self, tmp_path: Path) -> None:
        """A heads_dir that does not exist is a one-line error, not a silent fallback to the shipped heads."""
        with pytest.raises(ConfigError, match="does not exist; promote a head"):
            build_detectors(["relevance"], registry.DetectorOptions(heads_dir=tmp_path / "nope"))

    def test_setting_is_read(self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
        """LOOKOUT_DETECTORS__HEADS_DIR sets detectors.heads_dir (default None: the shipped heads)."""
        assert Settings().detectors.heads_dir is None
        monkeypatch.setenv("LOOKOUT_DETECTORS__HEADS_DIR", str(tmp_path))
        assert Settings().detectors.heads_dir == tmp_path
