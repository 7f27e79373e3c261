"""Build agent/data/demo_sample.jsonl and DEMO_SAMPLE_ATTRIBUTION.md for lookout.

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
    lines = [dump({k: r[k] for k in KEY_ORDER if k in r}) for r in records]
    bad = malformed_lines()
    step = len(lines) // (len(bad) + 1)
    for i, line in enumerate(bad):
        pos = (i + 1) * step + rng.randint(-step // 3, step // 3) + i
        lines.insert(pos, line)
    return lines, {"valid": len(records), "hh": len(hh), "qa": len(qa), "bad": len(bad)}


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
    OUT_DIR.mkdir(parents=True, exist_ok=True)
    SAMPLE_PATH.write_text("\n".join(lines) + "\n", encoding="utf-8")
    ATTRIBUTION_PATH.write_text(attribution(data, c), encoding="utf-8")
    size = SAMPLE_PATH.stat().st_size
    print(f"wrote {SAMPLE_PATH} ({size} bytes, {len(lines)} lines)")
    print(f"  valid: {c['valid']} (hh: {c['hh']}, qa: {c['qa']}), malformed: {c['bad']}")
    print(f"wrote {ATTRIBUTION_PATH}")


if __name__ == "__main__":
    main()
