"""Export output files: created exclusively, renamed into place, never through a link; one merged manifest."""

from __future__ import annotations

import json
import os
import stat
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from agent.export.files import FileEntry, JsonArrayFile, JsonLinesFile
from agent.export.parquet import ParquetWriter
from agent.export.run import Manifest, merge_manifest, read_manifest, summary


def _plant(directory: Path, name: str, victim: Path) -> None:
    """Symlinks at every name the old code used for ``name``'s temp file, all pointing at ``victim``."""
    for pid in {os.getpid(), os.getppid()}:
        (directory / f".{name}.{pid}.tmp").symlink_to(victim)


class TestAtomicFiles:
    """A planted symlink at a temp name cannot redirect an export's writes."""

    @pytest.mark.parametrize("kind", [JsonLinesFile, JsonArrayFile])
    def test_planted_symlink_leaves_the_victim_untouched(self, tmp_path: Path, kind: type[JsonLinesFile]) -> None:
        """The export writes its own new file; the file the link points at keeps its bytes."""
        victim = tmp_path / "victim.txt"
        victim.write_text("precious\n", encoding="utf-8")
        out = tmp_path / "out"
        out.mkdir()
        _plant(out, "records.jsonl", victim)
        f = kind(out, "records.jsonl")
        f.add({"id": "r1"})
        entry = f.commit()
        assert victim.read_text(encoding="utf-8") == "precious\n"
        assert entry.rows == 1 and "r1" in (out / "records.jsonl").read_text(encoding="utf-8")
        assert not (out / "records.jsonl").is_symlink()

    def test_temp_file_is_private_and_removed_on_abort(self, tmp_path: Path) -> None:
        """The temp file is created 0600 in the target directory, and abort removes it."""
        f = JsonLinesFile(tmp_path, "records.jsonl")
        assert f.tmp.parent == tmp_path and stat.S_IMODE(f.tmp.stat().st_mode) == 0o600
        f.abort()
        assert list(tmp_path.iterdir()) == []

    def test_parquet_through_a_planted_symlink(self, tmp_path: Path) -> None:
        """The parquet writer writes through its own descriptor too: the victim keeps its bytes."""
        victim = tmp_path / "victim.bin"
        victim.write_bytes(b"precious")
        out = tmp_path / "out"
        out.mkdir()
        _plant(out, "records.parquet", victim)
        writer = ParquetWriter(out, ["toxicity"])
        (entry,) = writer.commit()
        assert victim.read_bytes() == b"precious"
        assert entry.rows == 0 and pq.read_table(out / "records.parquet").num_rows == 0


def _entry(fmt: str, rows: int = 1, skipped: dict[str, int] | None = None) -> Manifest:
    skipped = skipped or {}
    files = [FileEntry(path=f"{fmt}.jsonl", rows=rows, sha256="0" * 64)]
    return Manifest(fmt, files, {}, rows + sum(skipped.values()), skipped, "2026-11-27T03:10:00Z", "0.1.0")


class TestManifestMerge:
    """One manifest.json per directory, merged entry by entry."""

    def test_concurrent_exports_into_one_directory_keep_every_entry(self, tmp_path: Path) -> None:
        """Eight formats merged at once from eight threads: all eight entries survive (the merge holds a lock)."""
        names = [f"fmt{i}" for i in range(8)]
        with ThreadPoolExecutor(max_workers=8) as pool:
            list(pool.map(lambda n: merge_manifest(tmp_path, _entry(n)), names))
        assert sorted(read_manifest(tmp_path)) == names
        assert [p.name for p in tmp_path.iterdir()] == ["manifest.json"]

    def test_manifest_is_private_and_replaced_atomically(self, tmp_path: Path) -> None:
        """The manifest is renamed into place (no temp file left) and readable by the owner only."""
        merge_manifest(tmp_path, _entry("sft"))
        merge_manifest(tmp_path, _entry("dpo"))
        path = tmp_path / "manifest.json"
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
        assert json.loads(path.read_text(encoding="utf-8"))["files"] == [
            {"path": "dpo.jsonl", "rows": 1, "sha256": "0" * 64, "format": "dpo"},
            {"path": "sft.jsonl", "rows": 1, "sha256": "0" * 64, "format": "sft"},
        ]


class TestSummary:
    """The line ``lookout export`` prints counts rows written, per file, in plain words."""

    def test_counts_written_rows_per_file_and_what_was_skipped(self, tmp_path: Path) -> None:
        """Rows written per file come first; matched records and the skipped reasons after."""
        line = summary(_entry("sft", rows=1, skipped={"no_corrected_response": 1}), tmp_path)
        assert line == f"wrote sft.jsonl (1 row) to {tmp_path}; 2 records matched, 1 skipped (no_corrected_response 1)"

    def test_nothing_skipped(self, tmp_path: Path) -> None:
        """With nothing skipped the line says so; one record is singular."""
        assert summary(_entry("jsonl", rows=1), tmp_path) == (
            f"wrote jsonl.jsonl (1 row) to {tmp_path}; 1 record matched, none skipped"
        )
