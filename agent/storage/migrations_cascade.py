"""Schema step 17: what cascade scoring decided per record (the others are in :mod:`agent.storage.migrations`).

Under ``scoring.mode: cascade`` (:mod:`agent.cascade`) each record stores which tier decided each detector's score
and, for the deterministic audit sample, the detectors whose fast-tier flag differed from the escalation tier's
(full or expensive); the cascade dashboard row and the ``lookout-cascade-agreement`` alert read them.
"""

from __future__ import annotations

from agent.storage.migration import Migration

V_RECORDS = (
    "CREATE OR REPLACE VIEW {db}.v_records AS SELECT * EXCEPT (superseded) FROM {db}.records FINAL WHERE superseded = 0"
)
"""``v_records`` as version 12 defines it (:data:`agent.storage.migrations.V_RECORDS`), recreated for the columns."""

CASCADE_MIGRATIONS: tuple[Migration, ...] = (
    Migration(
        17,
        "cascade tiers and audit",
        (
            # detector -> the tier that decided its score (fast, full or expensive); an empty map under
            # scoring.mode: full and for records stored before this version
            "ALTER TABLE {db}.records ADD COLUMN IF NOT EXISTS score_tiers "
            "Map(LowCardinality(String), LowCardinality(String))",
            # 1: in the audit sample (scoring.audit_rate, by record id), every tier scored it
            "ALTER TABLE {db}.records ADD COLUMN IF NOT EXISTS audited UInt8 DEFAULT 0",
            # audited records: the detectors whose fast-tier flag differed from the escalation tier's
            "ALTER TABLE {db}.records ADD COLUMN IF NOT EXISTS audit_disagree Array(LowCardinality(String))",
            V_RECORDS,
        ),
    ),
)
"""Version 17, applied in version order with the rest."""
