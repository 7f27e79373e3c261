"""Schema steps of the review tables since version 14 (the others are in :mod:`agent.storage.migrations`).

14 keeps, per verdict, what the reviewer saw; 16 adds overlap items and gold items.
"""

from __future__ import annotations

from agent.storage.migration import Migration

REVIEW_MIGRATIONS: tuple[Migration, ...] = (
    Migration(
        14,
        "what each review verdict judged",
        (
            # per verdict, what the reviewer saw: the detector's score (absent when it gave none), the threshold it
            # flags at and whether the record carried its flag; labels stored before this version have empty maps
            "ALTER TABLE {db}.review_labels ADD COLUMN IF NOT EXISTS verdict_scores Map(String, Float64) "
            "AFTER verdicts",
            "ALTER TABLE {db}.review_labels ADD COLUMN IF NOT EXISTS verdict_thresholds Map(String, Float64) "
            "AFTER verdict_scores",
            "ALTER TABLE {db}.review_labels ADD COLUMN IF NOT EXISTS verdict_flagged Map(String, UInt8) "
            "AFTER verdict_thresholds",
            "CREATE OR REPLACE VIEW {db}.v_review_labels AS SELECT * FROM {db}.review_labels FINAL",
        ),
    ),
    Migration(
        16,
        "review overlap and gold items",
        (
            # 1: the item waits for a second annotator's label (review.overlap_rate); items before this version: 0
            "ALTER TABLE {db}.review_items ADD COLUMN IF NOT EXISTS overlap UInt8 DEFAULT 0",
            "CREATE OR REPLACE VIEW {db}.v_review_items AS SELECT * FROM {db}.review_items FINAL",
            # gold items (review.gold) with their record and known answers, one row per (queue, record_id); kept
            # apart from records and review_items so stats, exports and dashboards never count them; latest wins
            """
            CREATE TABLE IF NOT EXISTS {db}.gold_items (
                queue LowCardinality(String),
                record_id String,
                enqueued_at DateTime64(6, 'UTC'),
                ts DateTime64(3, 'UTC'),
                tenant LowCardinality(String),
                model LowCardinality(String),
                route LowCardinality(String),
                priority Int32,
                reasons Array(LowCardinality(String)),
                rule LowCardinality(String),
                control UInt8,
                prompt String,
                response String,
                context Array(String),
                history Array(Tuple(role String, content String)),
                scores Map(String, Float64),
                flags Array(LowCardinality(String)),
                expected Map(String, Enum8('confirm' = 1, 'reject' = 2)),
                severity Nullable(UInt8),
                digest String,
                retired UInt8,
                loaded_at DateTime64(6, 'UTC')
            )
            ENGINE = ReplacingMergeTree(loaded_at)
            ORDER BY (queue, record_id)
            """,
            "CREATE VIEW IF NOT EXISTS {db}.v_gold_items AS SELECT * FROM {db}.gold_items FINAL",
        ),
    ),
)
"""Versions 14 and 16, applied in version order with the rest."""
