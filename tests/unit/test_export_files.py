"""Export output files: created exclusively in the target directory, renamed into place, never through a link."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from agent.export.files import JsonArrayFile, JsonLinesFile
from agent.export.parquet import ParquetWriter


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
