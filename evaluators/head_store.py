"""``lookout heads promote | list | rollback``: versions of the heads the agent scores with.

The folder (``detectors.heads_dir``) and its manifest are described in :mod:`detectors.promoted`. Promotion
copies a head file in as the next version of its head (``<head>-v<N>.json``, its model card beside it when
the file has one) and makes it active; rollback undoes the latest promotion still in effect: the version that
was active before it is active again (before the first: the shipped head). The manifest keeps that order in
each head's ``history``. Nothing is deleted, so every step is reversible. The agent reads the
folder at start: restart it after a promotion or a rollback.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from agent.errors import ConfigError
from detectors.head import LogisticHead
from detectors.promoted import (
    FORMAT,
    HEADS,
    MANIFEST,
    PromotedHeadError,
    check_head,
    file_sha256,
    read_manifest,
)


@dataclass(frozen=True, slots=True)
class HeadState:
    """One head's promoted versions and which is active."""

    head: str
    """Head name."""
    active: str | None
    """Active version name (``relevance-v2``); None: the shipped head."""
    versions: tuple[dict[str, Any], ...]
    """Manifest entries, oldest first."""
    history: tuple[str, ...] = ()
    """Promotions in effect, oldest first (the last is active); a rollback removes the last."""

    def to_json(self) -> dict[str, Any]:
        """JSON-ready form (``heads list --json``)."""
        return {
            "head": self.head,
            "active": self.active,
            "history": list(self.history),
            "versions": list(self.versions),
        }


def _manifest(heads_dir: Path) -> dict[str, Any]:
    try:
        return read_manifest(heads_dir)
    except PromotedHeadError as exc:
        raise ConfigError(str(exc)) from None


def _write_manifest(heads_dir: Path, manifest: Mapping[str, Any]) -> None:
    """Replace the manifest atomically (a reader sees the old one or the new one)."""
    fd, tmp = tempfile.mkstemp(dir=heads_dir, prefix=".manifest-", suffix=".json")
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        json.dump(manifest, fh, indent=1, sort_keys=True)
        fh.write("\n")
    os.replace(tmp, heads_dir / MANIFEST)


def states(heads_dir: Path) -> list[HeadState]:
    """Every promotable head's state (heads never promoted: no versions, the shipped one active)."""
    heads = _manifest(heads_dir)["heads"] if heads_dir.is_dir() else {}
    out = []
    for name in HEADS:
        state = heads.get(name) or {}
        out.append(
            HeadState(name, state.get("active"), tuple(state.get("versions", [])), tuple(state.get("history", [])))
        )
    return out


def _load(file: Path) -> LogisticHead:
    try:
        head = LogisticHead.load(file)
    except FileNotFoundError:
        raise ConfigError(f"no head file {file}") from None
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise ConfigError(f"{file} is not a head file ({type(exc).__name__}: {exc})") from None
    try:
        check_head(head)
    except PromotedHeadError as exc:
        raise ConfigError(f"{file}: {exc}") from None
    return head


def promote(heads_dir: Path, file: Path, now: datetime | None = None) -> dict[str, Any]:
    """Copy ``file`` into ``heads_dir`` as the next version of its head and make it active; returns its entry."""
    head = _load(file)
    heads_dir.mkdir(parents=True, exist_ok=True)
    manifest = _manifest(heads_dir)
    state = manifest["heads"].setdefault(head.name, {"active": None, "versions": [], "history": []})
    number = 1 + max((int(v["name"].rsplit("-v", 1)[1]) for v in state["versions"]), default=0)
    name = f"{head.name}-v{number}"
    shutil.copyfile(file, heads_dir / f"{name}.json")
    card = file.with_suffix(".md")
    if card.is_file():
        shutil.copyfile(card, heads_dir / f"{name}.md")
    site = head.meta.get("site_labels") or {}
    entry = {
        "name": name,
        "file": f"{name}.json",
        "head_version": head.version,
        "sha256": file_sha256(heads_dir / f"{name}.json"),
        "promoted_at": (now or datetime.now(UTC)).isoformat(),
        "source": str(file.resolve()),
        "site_label_rows": int(site.get("train_rows", 0)),
    }
    state["versions"].append(entry)
    state["history"] = [*state.get("history", []), name]
    state["active"] = name
    _write_manifest(heads_dir, {**manifest, "format": FORMAT})
    return entry


def rollback(heads_dir: Path, head: str | None = None) -> tuple[str, str | None]:
    """Undo ``head``'s latest promotion in effect: the version active before it is active again; returns (from, to).

    ``to`` None means the shipped head.

    ``head`` may be omitted when exactly one head has a promoted version active.
    """
    manifest = _manifest(heads_dir)
    active = {name: s for name, s in manifest["heads"].items() if s.get("active")}
    if head is None:
        if len(active) != 1:
            which = ", ".join(sorted(active)) or "none"
            raise ConfigError(f"name the head to roll back (heads with a promoted version active: {which})")
        head = next(iter(active))
    if head not in HEADS:
        raise ConfigError(f"unknown head {head!r} (valid: {', '.join(HEADS)})")
    if head not in active:
        raise ConfigError(f"{head} already uses the shipped head: nothing to roll back")
    state = active[head]
    current = state["active"]
    history = [name for name in state.get("history", []) if name != current] if current else []
    state["history"] = history
    state["active"] = history[-1] if history else None
    _write_manifest(heads_dir, manifest)
    return current, state["active"]
