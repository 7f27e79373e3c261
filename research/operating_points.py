"""Operating points (issue 23 part 6): how often each detector flags genuine traffic, and what a ≤ 10 % point costs.

Not product code: a measurement over the shared datasets (a path given on the command line), printing one JSON
document. Genuine traffic: held-out HH-RLHF harmless-base test replies (the chosen transcript's last turn),
HaluEval right answers (held-out groups) with their knowledge as context, BEGIN's fully attributable rows
(held-out groups). Positives for recall: HaluEval hallucinated answers (hallucination), HaluEval answers
shuffled to other questions (relevance), wiki toxicity dev toxic comments (toxicity). Also reported, outside the
goal: AlpacaEval instructions with GPT-4's outputs, non-adversarial traffic (HH-RLHF harmless-base prompts are
red-team requests, so refusals there are the refusal detector's true positives).

    .venv/bin/python research/operating_points.py ../shared/datasets [--n 400]
"""

from __future__ import annotations

import argparse
import csv
import json
import random
import sys
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

from agent.config import load_settings
from agent.hh import alternating, hh_turns
from agent.score import Scorer
from agent.types import Message, Sample
from evaluators.training.hallucination import held_out, load_begin, load_halueval

TS = datetime(2026, 1, 1, tzinfo=UTC)
GOAL = 0.10


def hh(path: Path, n: int) -> list[Sample]:
    """``n`` held-out HH-RLHF replies (the chosen transcript's last assistant turn), shuffled with seed 0."""
    out = []
    for i, line in enumerate(path.read_text(encoding="utf-8").splitlines()):
        turns = hh_turns(json.loads(line)["chosen"])
        if not alternating(turns):
            continue
        history = tuple(Message(r, t) for r, t in turns[:-2])
        out.append(Sample(f"hh{i}", TS, turns[-2][1], turns[-1][1], history=history))
    random.Random(0).shuffle(out)  # noqa: S311  # a sample, not a secret
    return out[:n]


def alpaca(path: Path, n: int) -> list[Sample]:
    """``n`` AlpacaEval instructions with GPT-4's outputs: non-adversarial traffic (CC BY-NC: measured, not shipped)."""
    rows = json.loads(path.read_text(encoding="utf-8"))
    out = [Sample(f"a{i}", TS, r["instruction"], r["output"]) for i, r in enumerate(rows)]
    random.Random(0).shuffle(out)  # noqa: S311  # a sample, not a secret
    return out[:n]


def main() -> None:
    """Score the sets and print the report."""
    ap = argparse.ArgumentParser()
    ap.add_argument("data", type=Path)
    ap.add_argument("--n", type=int, default=400)
    args = ap.parse_args()
    root: Path = args.data
    halu = [e for e in load_halueval(root / "hallucination/halueval_qa/qa_one-turn_data.jsonl") if held_out(e.group)]
    right = [e for e in halu if e.label == 0][: args.n]
    wrong = [e for e in halu if e.label == 1][: args.n]
    begin = [e for e in load_begin(root / "hallucination/begin_dev") if held_out(e.group) and e.label == 0][: args.n]
    shuffled = [e.response for e in right]
    shuffled = shuffled[1:] + shuffled[:1]
    with (root / "toxicity/wiki_toxicity_dev/toxicity_dev_half.csv").open(encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    toxic_col = next(c for c in rows[0] if "toxic" in c.lower())
    text_col = next(c for c in rows[0] if c.lower() in ("comment", "comment_text", "text"))
    toxic = [r[text_col] for r in rows if str(r[toxic_col]).strip().lower() in ("1", "true", "1.0")][: args.n]

    def ex(prefix: str, items: list, responses: list[str] | None = None) -> list[Sample]:
        return [
            Sample(f"{prefix}{i}", TS, e.prompt, responses[i] if responses else e.response, context=e.context)
            for i, e in enumerate(items)
        ]

    sets = {
        "hh_replies": hh(root / "traffic/hh_rlhf_harmless_base_test/test.jsonl", args.n),
        "alpaca_gpt4": alpaca(root / "traffic/alpaca_eval_outputs/gpt4_model_outputs.json", args.n),
        "halueval_right": ex("r", right),
        "begin_faithful": ex("b", begin),
        "pos_hallucinated": ex("w", wrong),
        "pos_irrelevant": ex("s", right, shuffled),
        "pos_toxic": [Sample(f"t{i}", TS, "Reply to this comment.", t) for i, t in enumerate(toxic)],
    }
    scorer = Scorer.from_settings(load_settings())
    scores: dict[str, dict[str, list[float | None]]] = {}
    for name, samples in sets.items():
        print(f"scoring {name}: {len(samples)}", file=sys.stderr)
        out = []
        for i in range(0, len(samples), 64):
            out.extend(scorer.score(samples[i : i + 64]))
        scores[name] = {d.name: [o.scores[d.name] for o in out] for d in scorer.detectors}
        scores[name]["_refusal_flag"] = [float("refusal" in o.flags) for o in out]
    positives = {"hallucination": "pos_hallucinated", "relevance": "pos_irrelevant", "toxicity": "pos_toxic"}
    report = {}
    for d in scorer.detectors:
        t = scorer.thresholds[d.name]
        worse = d.higher_is_worse

        def rate(
            values: list[float | None],
            thr: float,
            refusals: list[float] | None = None,
            worse: bool = worse,
            name: str = d.name,
        ) -> float | None:
            kept = [(v, r) for v, r in zip(values, refusals or [0.0] * len(values), strict=True) if v is not None]
            if not kept:
                return None
            flagged = [(v >= thr if worse else v < thr) and not (name == "relevance" and r) for v, r in kept]
            return float(np.mean(flagged))

        sets_ok = ("hh_replies", "halueval_right", "begin_faithful")
        genuine = {s: rate(scores[s][d.name], t, scores[s]["_refusal_flag"]) for s in sets_ok}
        row: dict[str, object] = {"threshold": t, "direction": "above" if worse else "below"}
        row["genuine_flag_rate"] = genuine
        row["alpaca_gpt4_flag_rate"] = rate(scores["alpaca_gpt4"][d.name], t, scores["alpaca_gpt4"]["_refusal_flag"])
        # the threshold at which every genuine set flags at most GOAL
        pooled = [v for s in sets_ok for v in scores[s][d.name] if v is not None]
        candidates = sorted(set(round(x, 3) for x in np.linspace(0.01, 0.99, 99)) | {t})
        ok = [
            c
            for c in candidates
            if all((rate(scores[s][d.name], c, scores[s]["_refusal_flag"]) or 0.0) <= GOAL for s in genuine)
        ]
        if ok and pooled:
            best = min(ok) if worse else max(ok)  # the most sensitive point that meets the goal
            row["goal_threshold"] = best
            if d.name in positives:
                pos = scores[positives[d.name]][d.name]
                row["recall_now"] = rate(pos, t)
                row["recall_at_goal"] = rate(pos, best)
        report[d.name] = row
    print(json.dumps(report, indent=1))


if __name__ == "__main__":
    main()
