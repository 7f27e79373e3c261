"""Measure repetition, tone/formality, novelty and near-duplicates on the traffic datasets (not a test).

    python scripts/eval_signals.py --data DIR [--skip-encoder]

Repetition: flag rate on real responses (HH-RLHF test ``chosen`` last turns, AlpacaEval GPT-4 and Alpaca-7B
outputs) and detection rate on synthetic degenerate versions of the HH responses (the last sentence repeated,
the whole response said twice, a 3-word loop appended). Tone/formality: distribution and flag rate on the same
real responses (no labels exist here, so no accuracy). Novelty: reference of 1,000 HH prompts from
``tests/data/drift_sample.jsonl``, false-alarm rate on the 1,178 held-out HH prompts and flag rate on 500
HaluEval questions. Near-duplicates: the highest cosine of each GPT-4 response to a response of another prompt
(false positives at the threshold), and the rate at which a canned reply injected among them is caught.
"""

from __future__ import annotations

import argparse
import json
import re
from pathlib import Path

import numpy as np

from detectors.drift import EmbeddingDrift
from detectors.duplicates import NearDuplicates
from detectors.repetition import repetition_score
from detectors.tone import ToneDetector, formality_score

ROOT = Path(__file__).resolve().parents[1]
_SENTENCE = re.compile(r"(?<=[.!?])\s+")


def _hh(data: Path) -> list[str]:
    path = data / "traffic" / "hh_rlhf_harmless_base_test" / "test.jsonl"
    rows = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]
    return [r["chosen"].rsplit("\n\nAssistant:", 1)[-1].strip() for r in rows]


def _alpaca(data: Path, name: str) -> tuple[list[str], list[str]]:
    rows = json.loads((data / "traffic" / "alpaca_eval_outputs" / f"{name}_model_outputs.json").read_text())
    return [r["instruction"] for r in rows], [r["output"] for r in rows]


def _rate(values: list[float | None], threshold: float, above: bool = True) -> float:
    kept = [v for v in values if v is not None]
    return float(np.mean([(v >= threshold) if above else (v < threshold) for v in kept])) if kept else 0.0


def repetition(hh: list[str], gpt4: list[str], alpaca7b: list[str]) -> None:
    """Flag rate on real responses, detection rate on synthetic loops."""
    print("## repetition (flag at 0.5)")
    for name, texts in (("hh-rlhf chosen", hh), ("alpacaeval gpt-4", gpt4), ("alpacaeval alpaca-7b", alpaca7b)):
        scores = [repetition_score(t) for t in texts]
        print(f"real  {name:22s} n={len(texts):5d} flagged {100 * _rate(scores, 0.5):5.2f}%")  # type: ignore[arg-type]
    long = [t for t in hh if len(t.split()) >= 25]
    loops = {
        "last sentence x4": [t + (" " + _SENTENCE.split(t)[-1]) * 3 for t in long],
        "whole response x2": [t + " " + t for t in long],
        "3-word loop x15": [t + (" " + " ".join(t.split()[-3:])) * 15 for t in long],
    }
    for name, texts in loops.items():
        scores = [repetition_score(t) for t in texts]
        print(f"synth {name:22s} n={len(texts):5d} detected {100 * _rate(scores, 0.5):5.2f}%")  # type: ignore[arg-type]


def tone(hh: list[str], gpt4: list[str]) -> None:
    """Tone and formality distributions and flag rates on real responses."""
    print("## tone (flag >= 0.75) and formality (flag < 0.2)")
    detector = ToneDetector()
    for name, texts in (("hh-rlhf chosen", hh), ("alpacaeval gpt-4", gpt4)):
        t = [detector.tone(x) for x in texts]
        f = [formality_score(x) for x in texts]
        tv = [v for v in t if v is not None]
        fv = [v for v in f if v is not None]
        print(
            f"{name:18s} tone mean {np.mean(tv):.3f} flagged {100 * _rate(t, 0.75):5.2f}% | "
            f"formality mean {np.mean(fv):.3f} flagged {100 * _rate(f, 0.2, above=False):5.2f}%"
        )


def novelty_and_duplicates(gpt4_prompts: list[str], gpt4: list[str]) -> None:
    """Novelty FA/detection on the drift sample; near-duplicate FP rate and canned-reply catch rate."""
    from detectors.encoder import SentenceTransformerEncoder

    encoder = SentenceTransformerEncoder()
    rows = [json.loads(line) for line in (ROOT / "tests/data/drift_sample.jsonl").read_text().splitlines()]
    hh = encoder.encode([r["text"] for r in rows if r["corpus"] == "hh"])
    qa = encoder.encode([r["text"] for r in rows if r["corpus"] == "qa"])
    print("## novelty (reference 1,000 HH prompts, k=5)")
    drift = EmbeddingDrift(reference_size=1000, k=5)
    drift.update(hh[:1000], list(range(1000)))
    held, off = drift.novelty(hh[1000:]), drift.novelty(qa)
    if held is None or off is None:
        raise SystemExit("reference not ready")
    for pct in (95.0, 99.0):
        q = pct / 100
        print(
            f"p{pct:g}: held-out HH flagged {100 * float((held >= q).mean()):5.2f}% (n={len(held)}), "
            f"HaluEval questions flagged {100 * float((off >= q).mean()):5.2f}% (n={len(off)})"
        )
    print(f"mean novelty: held-out {float(held.mean()):.3f}, other corpus {float(off.mean()):.3f}")

    print("## near-duplicates (AlpacaEval GPT-4 outputs, window 200, threshold 0.95)")
    p = encoder.encode(gpt4_prompts)
    r = encoder.encode(gpt4)
    chars = [len(x) for x in gpt4]
    natural = NearDuplicates(window=200).update(p, r, chars)
    print(f"natural responses flagged {100 * _rate(natural, 0.95):5.2f}% (n={sum(v is not None for v in natural)})")
    canned = "I'm sorry, but I can't assist with that request. If you have any other questions, feel free to ask!"
    order = np.random.default_rng(0).permutation(len(gpt4))
    texts = [canned if i % 20 == 0 else gpt4[j] for i, j in enumerate(order)]
    rv = encoder.encode(texts)
    mixed = NearDuplicates(window=200).update(p[order], rv, [len(t) for t in texts])
    hits = [mixed[i] for i in range(len(texts)) if i % 20 == 0 and i > 0]
    print(f"canned reply every 20th record: caught {100 * _rate(hits, 0.95):5.2f}% (n={len(hits)})")


def main() -> None:
    """Run every measurement and print the numbers."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, required=True, help="datasets folder (holds traffic/)")
    parser.add_argument("--skip-encoder", action="store_true", help="only the text-only signals")
    args = parser.parse_args()
    hh = _hh(args.data)
    gpt4_prompts, gpt4 = _alpaca(args.data, "gpt4")
    _, alpaca7b = _alpaca(args.data, "alpaca-7b")
    repetition(hh, gpt4, alpaca7b)
    tone(hh, gpt4)
    if not args.skip_encoder:
        novelty_and_duplicates(gpt4_prompts, gpt4)


if __name__ == "__main__":
    main()
