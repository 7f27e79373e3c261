"""Export formats: a ``Literal`` of names, a dict of writers, and ``resolve``.

Each writer takes rows in order and either writes a row or returns why it cannot represent it (the reason is
counted in the manifest's ``skipped``). Every format skips ``record_missing`` rows (a label or queue item whose
record id is not in ``v_records``).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, get_args

from agent.errors import LookoutError
from agent.export.files import JsonArrayFile, JsonLinesFile
from agent.export.writer import ExportOptions, OneFileWriter, SftHistory, Skip, Writer

if TYPE_CHECKING:
    from agent.storage.records import Row

FormatName = Literal["sft", "dpo", "jsonl", "parquet", "labelstudio", "argilla"]
"""Every export format."""
NAMES: tuple[str, ...] = get_args(FormatName)


def chat(record: Mapping[str, Any]) -> list[dict[str, str]]:
    """The conversation up to the prompt: earlier turns (system first, as logged), then the user prompt."""
    turns = [{"role": t["role"], "content": t["content"]} for t in record["history"]]
    return [*turns, {"role": "user", "content": record["prompt"]}]


def _correction_skip(row: Row) -> Skip:
    """Why a row cannot give a training example from a corrected response (None: it can)."""
    if row.record is None:
        return "record_missing"
    if row.label is None:
        return "unlabeled"
    if row.label.corrected_response is None or not row.label.corrected_response.strip():
        return "no_corrected_response"
    return None


def _text_gone(row: Row) -> bool:
    record = row.record or {}
    return not record.get("prompt") and not record.get("response")


def sft_example(record: Mapping[str, Any], corrected: str, history: SftHistory) -> dict[str, Any]:
    """The training part of an SFT row: only the reviewed, corrected response is ever a target.

    The earlier assistant turns are what the model said before, never reviewed (often the very harm that got the
    record flagged), so no mode lets a trainer learn them: ``none`` drops the earlier user and assistant turns
    (system turns stay), ``context`` puts the whole conversation in ``prompt`` and the correction in
    ``completion`` (TRL's conversational prompt-completion format: loss on the completion only by default),
    ``weighted`` keeps ``messages`` with ``"weight": 0`` on each earlier assistant turn and ``"weight": 1`` on
    the correction (OpenAI's chat fine-tuning format).
    """
    answer = {"role": "assistant", "content": corrected}
    if history == "context":
        return {"prompt": chat(record), "completion": [answer]}
    if history == "weighted":
        turns = [t | {"weight": 0} if t["role"] == "assistant" else t for t in chat(record)]
        return {"messages": [*turns, answer | {"weight": 1}]}
    system = [{"role": "system", "content": t["content"]} for t in record["history"] if t["role"] == "system"]
    return {"messages": [*system, {"role": "user", "content": record["prompt"]}, answer]}


class SftWriter(OneFileWriter):
    """``sft.jsonl``: ``{"id", "messages" (or "prompt" + "completion"), "feedback"}`` ending in the correction.

    What the row keeps of the earlier conversation is ``options.sft_history`` (see :func:`sft_example`).
    """

    FILE = (JsonLinesFile, "sft.jsonl")

    def add(self, row: Row) -> Skip:
        """Write the corrected conversation."""
        skip = _correction_skip(row)
        if skip is not None or row.label is None or row.record is None or row.label.corrected_response is None:
            return skip
        if row.label.preference == "original":
            return "original_preferred"
        if _text_gone(row):
            return "text_expired"
        example = sft_example(row.record, row.label.corrected_response, self.options.sft_history)
        self.out.add({"id": row.record_id, **example, "feedback": [f.to_json() for f in row.feedback]})
        return None


class DpoWriter(OneFileWriter):
    """``dpo.jsonl``: ``{"id", "prompt", "chosen", "rejected", "feedback"}``, conversational preference format.

    ``chosen`` is the corrected response when the label prefers it (``corrected``) and the original when it
    prefers the original (``original``); ``rejected`` is the other one.
    """

    FILE = (JsonLinesFile, "dpo.jsonl")

    def add(self, row: Row) -> Skip:
        """Write the preference pair."""
        skip = _correction_skip(row)
        if skip is not None or row.label is None or row.record is None:
            return skip
        if row.label.preference == "none":
            return "no_preference"
        if _text_gone(row):
            return "text_expired"
        corrected, original = row.label.corrected_response, row.record["response"]
        if corrected == original:
            return "corrected_equals_original"
        chosen, rejected = (corrected, original) if row.label.preference == "corrected" else (original, corrected)
        self.out.add(
            {
                "id": row.record_id,
                "prompt": chat(row.record),
                "chosen": [{"role": "assistant", "content": chosen}],
                "rejected": [{"role": "assistant", "content": rejected}],
                "feedback": [f.to_json() for f in row.feedback],
            }
        )
        return None


class JsonlWriter(OneFileWriter):
    """``records.jsonl``: every record field, ``scores``, ``review`` (queues), the latest ``label``, ``feedback``."""

    FILE = (JsonLinesFile, "records.jsonl")

    def add(self, row: Row) -> Skip:
        """Write the full row."""
        if row.record is None:
            return "record_missing"
        self.out.add(row.to_json())
        return None


class LabelStudioWriter(OneFileWriter):
    """``labelstudio_tasks.json``: Label Studio import tasks; a labeled record carries its label as an annotation."""

    FILE = (JsonArrayFile, "labelstudio_tasks.json")

    def add(self, row: Row) -> Skip:
        """Write the task."""
        from agent.review import labelstudio

        if row.record is None:
            return "record_missing"
        self.out.add(labelstudio.task(row))
        return None


class ArgillaWriter(OneFileWriter):
    """``argilla_records.json``: Argilla v2 records as ``dataset.records.to_json`` writes them.

    Fields ``prompt``, ``response``, ``history``, ``context``; metadata (ids, dimensions, scores); the lookout
    label as *suggestions* (``agent`` = ``lookout:<annotator>``) because Argilla responses need an Argilla user
    id. Load with ``rg.Record.from_dict`` into a dataset whose settings have those fields and questions
    ``verdict_<detector>``, ``severity``, ``note``, ``corrected_response``, ``preference`` (see docs/review.md).
    """

    FILE = (JsonArrayFile, "argilla_records.json")

    def add(self, row: Row) -> Skip:
        """Write the Argilla record."""
        record = row.record
        if record is None:
            return "record_missing"
        metadata: dict[str, Any] = {k: record[k] for k in ("tenant", "model", "route", "user_id", "ts")}
        metadata.update({k: v for k, v in row.scores.items() if v is not None})
        if row.queued is not None:
            metadata["priority"] = row.queued.priority
        suggestions: dict[str, Any] = {}
        label = row.label
        if label is not None:
            agent = f"lookout:{label.annotator}"
            answers: dict[str, Any] = {f"verdict_{d}": v for d, v in label.verdicts.items()}
            if label.severity:
                answers["severity"] = label.severity
            if label.note:
                answers["note"] = label.note
            if label.corrected_response is not None:
                answers["corrected_response"] = label.corrected_response
            answers["preference"] = label.preference
            suggestions = {q: {"value": v, "score": None, "agent": agent} for q, v in answers.items()}
        self.out.add(
            {
                "id": row.record_id,
                "fields": {
                    "prompt": record["prompt"],
                    "response": record["response"],
                    "history": "\n\n".join(f"[{t['role']}] {t['content']}" for t in record["history"]),
                    "context": "\n\n".join(record["context"]),
                },
                "metadata": metadata,
                "suggestions": suggestions,
                "responses": {},
                "vectors": {},
                "_server_id": None,
            }
        )
        return None


def _parquet(directory: Path, scores: Sequence[str], options: ExportOptions | None = None) -> Writer:
    from agent.export.parquet import ParquetWriter

    return ParquetWriter(directory, scores, options)


Factory = Callable[[Path, Sequence[str], ExportOptions], Writer]
"""Makes a format's writer for a directory, the stored score columns and the export's options."""

WRITERS: dict[str, Factory] = {
    "sft": SftWriter,
    "dpo": DpoWriter,
    "jsonl": JsonlWriter,
    "parquet": _parquet,
    "labelstudio": LabelStudioWriter,
    "argilla": ArgillaWriter,
}


def resolve(name: str) -> Factory:
    """The writer factory for a format name; the error lists the valid names."""
    try:
        return WRITERS[name]
    except KeyError:
        raise LookoutError(f"unknown export format {name!r}; choose from {', '.join(NAMES)}") from None
