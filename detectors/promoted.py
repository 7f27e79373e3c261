"""Promoted heads: a folder of head versions and a manifest saying which one each detector uses.

``lookout heads promote FILE`` copies a trained head into the folder (``detectors.heads_dir``) as a new version;
the agent loads the *active* version of each head at start instead of the shipped one. The folder holds
``manifest.json`` and one ``<head>-v<N>.json`` per promoted version (with its model card ``<head>-v<N>.md``
when one was given)::

    {"format": 1,
     "heads": {"relevance": {"active": "relevance-v2",
                             "versions": [{"name": "relevance-v1", "file": "relevance-v1.json",
                                           "head_version": "logit-...", "sha256": "...", "promoted_at": "...",
                                           "source": "/path/it/was/promoted/from.json"}, ...]}}}

``active`` null means the shipped head. This module only reads (the agent's side); writing is
``evaluators.head_store``'s. Paths are always passed in: nothing here reads settings.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from detectors.hallucination import FEATURES as HALLUCINATION_FEATURES
from detectors.hallucination import HeadHallucination
from detectors.head import LogisticHead
from detectors.relevance import FEATURES as RELEVANCE_FEATURES
from detectors.relevance import EmbeddingRelevance
from detectors.toxicity import LEXICAL_FEATURE, HeadToxicity, TextClassifier
from detectors.types import Detector

MANIFEST = "manifest.json"
"""The manifest's file name inside the heads folder."""
FORMAT = 1
"""The manifest format this code reads and writes."""

HEAD_OF: Mapping[str, str] = {
    "toxicity": "toxicity",
    "prompt_toxicity": "toxicity",
    "relevance": "relevance",
    "hallucination": "hallucination",
}
"""Detector name → the head it scores with (toxicity and prompt_toxicity share one)."""
HEADS: tuple[str, ...] = ("toxicity", "relevance", "hallucination")
"""Heads that can be promoted."""


class PromotedHeadError(ValueError):
    """The heads folder, its manifest or a promoted head file cannot be used (one line: what to do)."""


def file_sha256(path: Path) -> str:
    """SHA-256 of a file's bytes (the manifest keeps it, so an edited head file is noticed)."""
    return hashlib.sha256(path.read_bytes()).hexdigest()


def read_manifest(heads_dir: Path) -> dict[str, Any]:
    """The manifest of ``heads_dir`` (an empty one when nothing was promoted yet); the folder must exist."""
    if not heads_dir.is_dir():
        raise PromotedHeadError(
            f"heads folder {heads_dir} does not exist; promote a head into it (`lookout heads promote FILE`) "
            "or unset detectors.heads_dir"
        )
    path = heads_dir / MANIFEST
    if not path.is_file():
        return {"format": FORMAT, "heads": {}}
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise PromotedHeadError(f"cannot read {path}: {exc}") from None
    if not isinstance(data, dict) or data.get("format") != FORMAT or not isinstance(data.get("heads"), dict):
        raise PromotedHeadError(f"{path} is not a lookout heads manifest (format {FORMAT})")
    return data


def active_entry(manifest: Mapping[str, Any], name: str) -> dict[str, Any] | None:
    """The manifest's entry of ``name``'s active version; None when the shipped head is active."""
    head = manifest["heads"].get(name) or {}
    active = head.get("active")
    if not active:
        return None
    for entry in head.get("versions", []):
        if entry.get("name") == active:
            return dict(entry)
    raise PromotedHeadError(f"manifest names {active!r} active for {name} but lists no such version")


def load_version(heads_dir: Path, entry: Mapping[str, Any]) -> LogisticHead:
    """The head file of a manifest entry, checked against the SHA-256 recorded when it was promoted."""
    path = heads_dir / str(entry["file"])
    if not path.is_file():
        raise PromotedHeadError(f"promoted head {entry['name']} is missing ({path}); roll back or promote again")
    if file_sha256(path) != entry.get("sha256"):
        raise PromotedHeadError(f"promoted head {path} changed since it was promoted (SHA-256 differs)")
    return LogisticHead.load(path)


def load_active(heads_dir: Path, name: str) -> LogisticHead | None:
    """The active promoted version of head ``name`` in ``heads_dir``; None: use the shipped head."""
    entry = active_entry(read_manifest(heads_dir), name)
    return None if entry is None else load_version(heads_dir, entry)


def check_head(head: LogisticHead) -> None:
    """Raise :class:`PromotedHeadError` unless ``head`` is a head its detector accepts (name and features)."""
    expected = {"relevance": RELEVANCE_FEATURES, "hallucination": HALLUCINATION_FEATURES}
    if head.name not in HEADS:
        raise PromotedHeadError(f"{head.name!r} is not a promotable head (valid: {', '.join(HEADS)})")
    if head.name in expected and head.feature_names != expected[head.name]:
        raise PromotedHeadError(f"head {head.name} has features {list(head.feature_names)}, not the detector's")
    if head.name == "toxicity" and (not head.feature_names or head.feature_names[-1] != LEXICAL_FEATURE):
        raise PromotedHeadError(f"head toxicity's last feature is not {LEXICAL_FEATURE}")


def detector_with_head(detector: str, head: LogisticHead, lexical: TextClassifier | None = None) -> Detector:
    """Detector ``detector`` (toxicity, prompt_toxicity, relevance, hallucination) scoring with ``head``."""
    if HEAD_OF.get(detector) != head.name:
        raise PromotedHeadError(f"detector {detector} does not score with a {head.name} head")
    if detector == "relevance":
        return EmbeddingRelevance(head=head)
    if detector == "hallucination":
        return HeadHallucination(head=head)
    return HeadToxicity(target="response" if detector == "toxicity" else "prompt", head=head, lexical=lexical)
