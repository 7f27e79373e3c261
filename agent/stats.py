"""What is stored, as a user sees it: every query reads the deduplicated ``v_*`` views."""

from __future__ import annotations

from typing import Any

from agent.drift import SIGNAL_FLAGS, STREAM_SIGNALS
from agent.storage import migrations
from agent.storage.client import Client
from detectors.registry import NAMES


def score_columns(client: Client, db: str) -> list[str]:
    """Score columns present in ``records``: detectors in registry order, then the drift step's signals."""
    present = migrations.record_columns(client, db)
    return [n for n in (*NAMES, *STREAM_SIGNALS) if n in present]


def runs(client: Client, db: str) -> int:
    """How many agent runs the store has seen."""
    return int(client.command(f"SELECT count() FROM {db}.v_agent_runs"))


def collect(client: Client, db: str, top: int = 5) -> dict[str, Any]:
    """Samples, DLQ, per-detector mean and flagged count, cost, and the most flagged records."""
    detectors = score_columns(client, db)
    per_detector = ", ".join(
        f"avg({d}), countIf(has(flags, '{SIGNAL_FLAGS.get(d, d)}')), count({d})" for d in detectors
    )
    row = client.query(
        f"SELECT count(), sum(cost_usd), countIf(cost_usd IS NULL), min(ts), max(ts)"
        f"{', ' + per_detector if per_detector else ''} FROM {db}.v_records"
    ).result_rows[0]
    samples, cost, uncosted, first, last = row[:5]
    detector_stats = {}
    for i, d in enumerate(detectors):
        mean, flagged, scored = row[5 + 3 * i : 8 + 3 * i]
        detector_stats[d] = {
            "mean": None if not scored else round(float(mean), 4),
            "flagged": int(flagged),
            "scored": int(scored),
        }
    dlq = client.query(f"SELECT count() FROM {db}.v_dead_letters").result_rows[0][0]
    reasons = client.query(
        f"SELECT reason, count() AS n FROM {db}.v_dead_letters GROUP BY reason ORDER BY n DESC, reason LIMIT 5"
    ).result_rows
    by_model = client.query(
        f"SELECT model, count(), sum(cost_usd) FROM {db}.v_records GROUP BY model ORDER BY 3 DESC NULLS LAST, 1"
    ).result_rows
    flagged_rows = client.query(
        f"SELECT id, model, tenant, flags, {', '.join(detectors) or 'NULL'}, substring(response, 1, 80) "
        f"FROM {db}.v_records WHERE notEmpty(flags) "
        f"ORDER BY length(flags) DESC, {' + '.join(f'coalesce({_badness(d)}, 0)' for d in detectors) or '0'} DESC, id "
        f"LIMIT {int(top)}"
    ).result_rows
    queues = client.query(
        f"SELECT i.queue, count(), countIf(l.record_id != '') FROM {db}.v_review_items AS i "
        f"LEFT JOIN (SELECT DISTINCT queue, record_id FROM {db}.v_review_labels) AS l "
        "ON i.queue = l.queue AND i.record_id = l.record_id GROUP BY i.queue ORDER BY i.queue"
    ).result_rows
    drift = client.query(
        f"SELECT count(), countIf(drifted = 1), uniqExactIf((stream, tenant, model, route), drifted = 1) "
        f"FROM {db}.v_drift_windows"
    ).result_rows[0]
    drifted = client.query(
        f"SELECT tenant, model, route, arraySort(groupUniqArray(stream)) FROM {db}.v_drift_windows "
        "WHERE drifted = 1 GROUP BY tenant, model, route ORDER BY tenant, model, route"
    ).result_rows
    return {
        "samples": int(samples),
        "dead_letters": int(dlq),
        "dead_letter_reasons": {str(r): int(n) for r, n in reasons},
        "first_ts": first.isoformat() if samples else None,
        "last_ts": last.isoformat() if samples else None,
        "cost_usd": round(float(cost or 0.0), 6),
        "records_without_cost": int(uncosted),
        "cost_by_model": [
            {"model": m, "records": int(n), "cost_usd": None if c is None else round(float(c), 6)}
            for m, n, c in by_model
        ],
        "detectors": detector_stats,
        "review_queues": {str(q): {"items": int(n), "labeled": int(done)} for q, n, done in queues},
        "drift": {
            "windows": int(drift[0]), "drifted": int(drift[1]), "streams_drifted": int(drift[2]),
            "drifted_streams": [
                {"tenant": t, "model": m, "route": r, "signals": [str(x) for x in signals]}
                for t, m, r, signals in drifted
            ],
        },
        "most_flagged": [
            {
                "id": r[0], "model": r[1], "tenant": r[2], "flags": list(r[3]),
                "scores": {
                    d: None if v is None else round(float(v), 3) for d, v in zip(detectors, r[4:-1], strict=True)
                },
                "response": r[-1],
            }
            for r in flagged_rows
        ],
    }  # fmt: skip


def _badness(detector: str) -> str:
    """SQL for how bad a score is, higher worse, whatever the detector's direction."""
    return f"1 - {detector}" if detector in ("relevance", "formality") else detector
