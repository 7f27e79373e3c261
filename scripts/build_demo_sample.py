"""Build agent/data/demo_sample.jsonl, demo_drift.jsonl and DEMO_SAMPLE_ATTRIBUTION.md for lookout.

Source: MIT-licensed HH-RLHF + HaluEval QA, read from the datasets folder given as ``--data``. Stdlib only::

    python scripts/build_demo_sample.py --data DIR
"""

from __future__ import annotations

import argparse
import json
import math
import random
import re
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from functools import partial
from pathlib import Path
from typing import Any

from agent.hh import alternating, hh_turns

HH_DIR = Path("traffic") / "hh_rlhf_harmless_base_test"
"""HH-RLHF harmless-base test, relative to the datasets folder."""
QA_DIR = Path("hallucination") / "halueval_qa"
"""HaluEval QA, relative to the datasets folder."""
OUT_DIR = Path(__file__).resolve().parent.parent / "agent" / "data"
SAMPLE_PATH = OUT_DIR / "demo_sample.jsonl"
DRIFT_PATH = OUT_DIR / "demo_drift.jsonl"
ATTRIBUTION_PATH = OUT_DIR / "DEMO_SAMPLE_ATTRIBUTION.md"

N_HH = 320
N_QA = 60
END = datetime(2026, 11, 26, 12, 0, 0, tzinfo=UTC)
WINDOW_S = 2 * 24 * 3600
START = END - timedelta(seconds=WINDOW_S)
MODELS = ["gpt-4o-mini", "gpt-4o", "claude-3-5-haiku", "llama-3.1-8b-instruct", "in-house-llm"]
MODEL_WEIGHTS = [35, 20, 20, 20, 5]  # in-house-llm (~5%) deliberately has no price
TENANTS = ["acme", "globex", "initech"]
HH_ROUTES = ["chat", "support", "assistant"]
N_DRIFT_QA = 90
"""The drifting stream's usual traffic: RAG questions with their passages and right answers."""
N_DRIFT_HH = 30
"""Then red-team chat arrives on the same stream: one drift window (the demo's ``drift.window_size``)."""
DRIFT_STREAM = {"model": "gpt-4o-mini", "tenant": "globex", "user_id": "u-kb", "route": "kb-qa"}
"""One stream (tenant, model, route) no record of demo_sample.jsonl belongs to."""
DRIFT_STEP = timedelta(minutes=1)
"""Records of the stream are this far apart and end at ``END``: a window of 30 closes by count, not by time."""
KEY_ORDER = ["id", "ts", "model", "tenant", "user_id", "route", "prompt", "messages", "context", "response"]
KEY_ORDER += ["usage", "latency_ms", "trace_id", "metadata"]
SENT_RE = re.compile(r"(?<=[a-z0-9)\"'][.!?])\s*(?=[A-Z])")
dump = partial(json.dumps, ensure_ascii=False)  # one JSON line, UTF-8 kept as-is


def parse_transcript(text: str) -> list[dict[str, str]] | None:
    """Split an HH-RLHF transcript into user/assistant turns (None if irregular)."""
    turns = hh_turns(text)
    if text.partition("\n\n")[0].strip() or len(turns) < 2 or not alternating(turns):
        return None
    return [{"role": role, "content": content} for role, content in turns]


def split_passages(knowledge: str, rng: random.Random) -> list[str]:
    """Split knowledge into 1-3 passages of sentences re-joined by single spaces."""
    sentences = [s.strip() for s in SENT_RE.split(knowledge) if s.strip()]
    n = 1 if len(knowledge) <= 300 else min(len(sentences), rng.choice([2, 3]))
    size = math.ceil(len(sentences) / n)
    starts = range(0, len(sentences), size)
    return [" ".join(sentences[i : i + size]) for i in starts]


def tokens(text: str) -> int:
    """Crude token estimate: ceil(chars / 4)."""
    return math.ceil(len(text) / 4)


def add_synthetic(rec: dict[str, Any], prompt: str, rng: random.Random) -> None:
    """Fill in the synthetic operational fields (model, tenant, usage, ...)."""
    rec["model"] = rng.choices(MODELS, weights=MODEL_WEIGHTS)[0]
    rec["tenant"] = rng.choice(TENANTS)
    rec["user_id"] = f"u-{rng.randint(1, 40):03d}"
    out_tokens = tokens(rec["response"])
    if rng.random() >= 0.05:
        rec["usage"] = {"prompt_tokens": tokens(prompt), "completion_tokens": out_tokens}
    latency = 200 + out_tokens * 15 + rng.gauss(0, 120)
    rec["latency_ms"] = round(max(50.0, latency), 1)
    rec["trace_id"] = f"{rng.getrandbits(128):032x}"


def build_hh(data: Path, rng: random.Random) -> list[dict[str, Any]]:
    """Sample N_HH conversations from HH-RLHF harmless-base test."""
    with open(data / HH_DIR / "test.jsonl", encoding="utf-8") as fh:
        rows = [json.loads(line) for line in fh if line.strip()]
    out: list[dict[str, Any]] = []
    for row in rng.sample(rows, len(rows)):
        if len(out) == N_HH:
            break
        variant = "chosen" if rng.random() < 0.7 else "rejected"
        turns = parse_transcript(row[variant])
        if turns is None:
            continue
        history, response = turns[:-1], turns[-1]["content"]
        rec: dict[str, Any] = {"id": f"demo-hh-{len(out) + 1:05d}", "response": response}
        if rng.random() < 1 / 3:
            rec["prompt"] = history[-1]["content"]
        else:
            rec["messages"] = history
        rec["route"] = rng.choice(HH_ROUTES)
        rec["metadata"] = {"source": "hh-rlhf-harmless-base", "variant": variant}
        prompt_text = rec.get("prompt") or "\n".join(m["content"] for m in history)
        add_synthetic(rec, prompt_text, rng)
        out.append(rec)
    return out


def build_qa(data: Path, rng: random.Random) -> list[dict[str, Any]]:
    """Sample N_QA HaluEval QA rows, half right and half hallucinated answers."""
    with open(data / QA_DIR / "qa_one-turn_data.jsonl", encoding="utf-8") as fh:
        rows = [json.loads(line) for line in fh if line.strip()]
    picked = rng.sample(rows, N_QA)
    variants = ["right"] * (N_QA // 2) + ["hallucinated"] * (N_QA - N_QA // 2)
    rng.shuffle(variants)
    out: list[dict[str, Any]] = []
    for i, (row, variant) in enumerate(zip(picked, variants, strict=True), start=1):
        context = split_passages(row["knowledge"], rng)
        rec: dict[str, Any] = {
            "id": f"demo-qa-{i:05d}",
            "prompt": row["question"].strip(),
            "context": context,
            "response": row[f"{variant}_answer"].strip(),
            "route": "rag-qa",
            "metadata": {"source": "halueval-qa", "variant": variant},
        }
        add_synthetic(rec, rec["prompt"] + "\n" + "\n".join(context), rng)
        out.append(rec)
    return out


def build_drift(data: Path, used: set[str], rng: random.Random) -> list[dict[str, Any]]:
    """One stream: N_DRIFT_QA questions (none of the sample's), then N_DRIFT_HH red-team openings, in that order."""
    with open(data / QA_DIR / "qa_one-turn_data.jsonl", encoding="utf-8") as fh:
        qa = [json.loads(line) for line in fh if line.strip()]
    with open(data / HH_DIR / "test.jsonl", encoding="utf-8") as fh:
        hh = [json.loads(line) for line in fh if line.strip()]
    out: list[dict[str, Any]] = []
    for row in rng.sample([r for r in qa if r["question"].strip() not in used], N_DRIFT_QA):
        out.append(
            {
                "prompt": row["question"].strip(),
                "context": split_passages(row["knowledge"], rng),
                "response": row["right_answer"].strip(),
                "metadata": {"source": "halueval-qa", "variant": "right"},
            }
        )
    openings = []
    for row in rng.sample(hh, len(hh)):
        variant = "chosen" if rng.random() < 0.7 else "rejected"
        turns = parse_transcript(row[variant])
        if turns is None or turns[0]["content"] in used:
            continue
        opening = {"prompt": turns[0]["content"], "response": turns[1]["content"]}
        openings.append({**opening, "metadata": {"source": "hh-rlhf-harmless-base", "variant": variant}})
        if len(openings) == N_DRIFT_HH:
            break
    out += openings
    start = END - DRIFT_STEP * len(out)
    for i, rec in enumerate(out, start=1):
        prompt = rec["prompt"] + "\n" + "\n".join(rec.get("context", []))
        rec.update(id=f"demo-kb-{i:05d}", ts=format_ts(start + DRIFT_STEP * i, as_epoch=False), **DRIFT_STREAM)
        rec["usage"] = {"prompt_tokens": tokens(prompt), "completion_tokens": tokens(rec["response"])}
        rec["latency_ms"] = round(max(50.0, 200 + tokens(rec["response"]) * 15 + rng.gauss(0, 120)), 1)
        rec["trace_id"] = f"{rng.getrandbits(128):032x}"
    return out


def format_ts(ts: datetime, as_epoch: bool) -> str | int:
    """Render a timestamp as RFC 3339 (ms, Z) or integer epoch milliseconds."""
    if as_epoch:
        return int(ts.timestamp() * 1000)
    return ts.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def malformed_lines() -> list[str]:
    """Return the eight deliberately invalid lines (one physical line each)."""

    def bad(n: int, **fields: object) -> str:
        """Build one invalid record; a None field value means 'omit the key'."""
        rec: dict[str, object] = {"id": f"demo-bad-{n:05d}", "ts": "2026-11-25T10:00:00.000Z", "prompt": "hi"}
        rec.update(model="gpt-4o-mini", tenant="acme", **fields)
        return dump({k: v for k, v in rec.items() if v is not None})

    no_user = [{"role": "assistant", "content": "hi"}]
    return [
        "this line is not JSON {oops",
        dump([{"prompt": "hi", "response": "hello"}]),
        bad(3, prompt="Where is my order?"),
        bad(4, prompt="Count to 42", response=42),
        bad(5, ts="not-a-date", response="hello"),
        bad(6, prompt=None, messages=no_user, response="hello"),
        bad(7, prompt="Who wrote it?", context="a string not a list", response="Nobody."),
        dump("hello"),
    ]


def build(data: Path, rng: random.Random) -> tuple[list[str], dict[str, int]]:
    """Assemble all lines; returns (lines, counts)."""
    hh, qa = build_hh(data, rng), build_qa(data, rng)
    records = hh + qa
    rng.shuffle(records)
    offsets = sorted(rng.uniform(0, WINDOW_S) for _ in records)
    for rec, off in zip(records, offsets, strict=True):
        ts = START + timedelta(milliseconds=round(off * 1000))
        rec["ts"] = format_ts(ts, rng.random() < 0.2)
    lines = [json_line(r) for r in records]
    bad = malformed_lines()
    step = len(lines) // (len(bad) + 1)
    for i, line in enumerate(bad):
        pos = (i + 1) * step + rng.randint(-step // 3, step // 3) + i
        lines.insert(pos, line)
    return lines, {"valid": len(records), "hh": len(hh), "qa": len(qa), "bad": len(bad)}


def json_line(rec: dict[str, Any]) -> str:
    """One record as a JSON line, keys in KEY_ORDER."""
    return dump({k: rec[k] for k in KEY_ORDER if k in rec})


def prompts_of(lines: Sequence[str]) -> set[str]:
    """Every prompt and user turn of the sample's records (the drift stream uses none of them)."""
    out: set[str] = set()
    for text in lines:
        try:
            rec = json.loads(text)
        except ValueError:  # one of the malformed lines
            continue
        if isinstance(rec, dict):
            out.add(str(rec.get("prompt", "")).strip())
            out.update(m["content"] for m in rec.get("messages", []) if isinstance(m, dict) and "content" in m)
    return out


def license_block(directory: Path) -> tuple[str, str, str]:
    """Return (copyright line, snapshot commit, full license text) for a source."""
    text = (directory / "LICENSE.txt").read_text(encoding="utf-8").strip()
    source = (directory / "SOURCE.txt").read_text(encoding="utf-8")
    holder = next(ln for ln in text.splitlines() if ln.startswith("Copyright"))
    commit = re.search(r"Snapshot commit: ([0-9a-f]{40})", source)
    return holder, commit.group(1) if commit else "unknown", text


def attribution(data: Path, c: dict[str, int]) -> str:
    """Render DEMO_SAMPLE_ATTRIBUTION.md from the line counts."""
    hh_c, hh_commit, hh_lic = license_block(data / HH_DIR)
    qa_c, qa_commit, qa_lic = license_block(data / QA_DIR)
    valid, bad, total = c["valid"], c["bad"], c["valid"] + c["bad"]
    return f"""# Demo sample attribution

Generated by `scripts/build_demo_sample.py` (deterministic, seed 7): {total} lines =
**{valid} valid v1 records** ({c["hh"]} HH-RLHF, {c["qa"]} HaluEval QA) +
**{bad} malformed lines** (not JSON, JSON array, missing `response`, numeric
`response`, bad `ts`, `messages` without a user turn, string `context`, bare JSON
string) for exercising input validation.

`demo_drift.jsonl` (seed 11): **{N_DRIFT_QA + N_DRIFT_HH} valid v1 records of one stream** (tenant `globex`, model
`gpt-4o-mini`, route `kb-qa`), one minute apart: {N_DRIFT_QA} HaluEval QA questions with their passages and right
answers, then the openings of {N_DRIFT_HH} HH-RLHF conversations (first Human and first Assistant turn). None
of their prompts is in `demo_sample.jsonl`. `lookout demo` replays them after the sample, so that stream's
traffic shifts from questions about passages to red-team chat.

## Sources (both MIT License)

- `demo-hh-*`: Anthropic HH-RLHF (Bai et al., 2022), `harmless-base/test.jsonl.gz`,
  https://github.com/anthropics/hh-rlhf @ `{hh_commit}`; {hh_c}.
  Content warning: red-team prompts/responses; may be offensive or upsetting.
- `demo-qa-*`: HaluEval (Li et al., 2023), `generation/qa/qa_one-turn_data.json`,
  https://github.com/RUCAIBox/HaluEval @ `{qa_commit}`; {qa_c}.
  Note: the QA rows are built from HotpotQA questions and Wikipedia text (CC BY-SA 4.0 upstream).

## Real vs. synthetic fields

- HH-RLHF: `messages`/`prompt`/`response` are verbatim (trimmed) turns of the
  `chosen` (~70%) or `rejected` (~30%) transcript: the last Assistant turn is
  `response`; earlier turns are `messages`, or (~1/3) just the last Human turn as
  `prompt`. `metadata.variant` says which transcript.
- HaluEval (`knowledge`, `question`, `right_answer`, `hallucinated_answer`):
  `prompt` = question; `context` = knowledge in 1-3 sentence-boundary passages
  (missing post-sentence spaces restored); `response` = right or hallucinated
  answer, half each (`metadata.variant`).
- **Synthetic** (seeded random): `id`, `ts`, `model`, `tenant`, `user_id`, `route`,
  `usage` (ceil(chars/4); omitted on ~5%), `latency_ms`, `trace_id`,
  `metadata.source`, and the malformed lines. `in-house-llm` has no price on purpose.

## License texts (copied from the upstream LICENSE files)
HH-RLHF:
```
{hh_lic}
```
HaluEval:
```
{qa_lic}
```
"""


def main(argv: Sequence[str] | None = None) -> None:
    """Build the sample and attribution files and print a summary."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--data", type=Path, required=True, help="datasets folder (holds traffic/ and hallucination/)")
    data = parser.parse_args(argv).data
    rng = random.Random(7)  # noqa: S311 - reproducible demo data, not crypto
    lines, c = build(data, rng)
    drift = build_drift(data, prompts_of(lines), random.Random(11))  # noqa: S311 - reproducible demo data
    OUT_DIR.mkdir(parents=True, exist_ok=True)
    SAMPLE_PATH.write_text("\n".join(lines) + "\n", encoding="utf-8")
    DRIFT_PATH.write_text("\n".join(json_line(r) for r in drift) + "\n", encoding="utf-8")
    ATTRIBUTION_PATH.write_text(attribution(data, c), encoding="utf-8")
    size = SAMPLE_PATH.stat().st_size
    print(f"wrote {SAMPLE_PATH} ({size} bytes, {len(lines)} lines)")
    print(f"  valid: {c['valid']} (hh: {c['hh']}, qa: {c['qa']}), malformed: {c['bad']}")
    print(f"wrote {DRIFT_PATH} ({len(drift)} lines: {N_DRIFT_QA} HaluEval QA, then {N_DRIFT_HH} HH-RLHF)")
    print(f"wrote {ATTRIBUTION_PATH}")


if __name__ == "__main__":
    main()
