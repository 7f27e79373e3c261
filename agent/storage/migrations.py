"""Versioned, idempotent schema migrations, recorded in ``schema_migrations``.

Tables:
- ``records``: one row per record, identified by (tenant, id). ReplacingMergeTree keyed by (tenant, model, ts, id)
  with ``ingested_at`` as version, so a record written twice (a crash between write and commit) collapses to one
  row; a copy under another model or ts is superseded by a tombstone (version 12). Every read goes through the
  ``v_*`` views (``FINAL``), so users never see a second copy, even before a merge. Since version 13 it also
  holds the call's ``span_id``/``parent_span_id``, its ``session_id`` and its ``error`` ('' when absent).
  Since version 15, the ``thresholds_version`` (``detectors.thresholds_file``) its flags were made under; since
  version 17, the cascade's ``score_tiers``, ``audited`` and ``audit_disagree`` (:mod:`agent.cascade`).
- ``dead_letters``: one row per decode failure, keyed by source topic/partition/offset.
- ``agent_runs``: one row per agent run with its counters, replaced as the run progresses.
- ``drift_windows``: one row per (stream, window): drift score vs threshold for an embedding or score stream.
- ``drift_references``: one row per stream signal (and encoder): the drift reference it filled, restored at start.
- ``review_items``: one row per (queue, record_id) routed for human review; the FIRST enqueue wins. Since version
  16 ``overlap`` marks items that wait for a second annotator's label.
- ``gold_items``: gold items (a record and its known verdicts) per (queue, record_id), apart from ``records`` and
  ``review_items``; the latest load wins (``retired`` once the gold file drops it).
- ``review_claims``: claim events (claimed, renewed, released) keyed by claim_id; the view shows each claim's latest.
- ``review_labels``: human labels, one per label_id (idempotency key); the first copy wins. Since version 14 each
  verdict keeps the detector's score, threshold and flag the reviewer saw (``verdict_scores/_thresholds/_flagged``).
- ``annotators``: review UI users (sha256 of their token only), one row per name; the latest row wins.
- ``review_sessions``: signed-in review UI sessions (sha256 of the random session id only), one row per session;
  the latest row wins (sign-out writes a revoked copy).
- ``record_embeddings``: per record and text field, the encoder vector as Int8 plus a scale (drift reports, rescore).
- ``eval_runs`` / ``eval_scores``: ``lookout evaluate ragas`` runs and their per-record, per-metric values.
- ``record_scores`` / ``rescore_runs``: ``lookout rescore`` scores per detector version, and resumable run cursors.
- ``feedback``: user feedback events (thumbs, reports, ratings), one per event id; ``v_record_feedback`` joins
  them to records when read (by ``record_id``, or ``trace_id`` for every record of a trace).
"""

from __future__ import annotations

from agent.storage.client import Client
from agent.storage.cluster import LOCAL_SUFFIX, on_cluster
from agent.storage.migration import Migration
from agent.storage.migrations_cascade import CASCADE_MIGRATIONS
from agent.storage.migrations_review import REVIEW_MIGRATIONS

__all__ = ["MIGRATIONS", "V_RECORDS", "Migration", "applied_versions", "migrate", "record_columns", "set_text_ttl"]

ITEM_COLUMNS = (
    "queue", "record_id", "enqueued_at", "record_ts", "tenant", "model", "route", "priority", "reasons", "rule",
    "control",
)  # fmt: skip
"""The columns of ``review_items`` that the review and feedback sinks insert, in order."""

TEXT_COLUMNS = ("prompt", "response", "history", "context")
"""Raw text columns that ``clickhouse.raw_text_ttl_days`` expires."""

TEXT_COLUMN_TYPES = {
    "prompt": "String",
    "response": "String",
    "history": "Array(Tuple(role String, content String))",
    "context": "Array(String)",
}


_FEEDBACK_JOINED = (
    "SELECT r.id AS record_id, r.ts AS record_ts, r.tenant AS tenant, r.model AS model, r.route AS route, "
    "r.flags AS flags, f.event_id AS event_id, f.ts AS ts, f.kind AS kind, f.value AS value, f.user_id AS user_id, "
    "f.comment AS comment, f.trace_id AS trace_id FROM {db}.v_feedback AS f INNER JOIN "
    "(SELECT id, ts, tenant, model, route, trace_id, flags FROM {db}.v_records "
    "ORDER BY id, ingested_at DESC LIMIT 1 BY id) AS r "
)
_RECORD_FEEDBACK = (
    f"{_FEEDBACK_JOINED}ON r.id = f.record_id WHERE f.record_id != '' "
    f"UNION ALL {_FEEDBACK_JOINED}ON r.trace_id = f.trace_id WHERE f.trace_id != '' AND r.trace_id != ''"
)
"""Per record, each feedback event about it: by ``record_id``, or by ``trace_id`` (every record of the trace)."""


V_RECORDS = (
    "CREATE OR REPLACE VIEW {db}.v_records AS SELECT * EXCEPT (superseded) FROM {db}.records FINAL WHERE superseded = 0"
)
"""``v_records`` since version 12 (one row per (tenant, id)); a migration adding a column recreates it with this."""


MIGRATIONS: tuple[Migration, ...] = (
    Migration(
        1,
        "records, dead letters, agent runs",
        (
            """
            CREATE TABLE IF NOT EXISTS {db}.records (
                id String,
                ts DateTime64(3, 'UTC'),
                ingested_at DateTime64(6, 'UTC'),
                tenant LowCardinality(String),
                user_id String,
                model LowCardinality(String),
                route LowCardinality(String),
                trace_id String,
                prompt String,
                response String,
                history Array(Tuple(role String, content String)),
                context Array(String),
                prompt_tokens Nullable(UInt32),
                completion_tokens Nullable(UInt32),
                cost_usd Nullable(Float64),
                latency_ms Nullable(Float32),
                metadata Map(String, String),
                toxicity Nullable(Float32),
                prompt_toxicity Nullable(Float32),
                relevance Nullable(Float32),
                detector_versions Map(LowCardinality(String), String),
                flags Array(LowCardinality(String)),
                src_topic LowCardinality(String),
                src_partition Int32,
                src_offset Int64
            )
            ENGINE = ReplacingMergeTree(ingested_at)
            PARTITION BY toDate(ts)
            ORDER BY (tenant, model, ts, id)
            """,
            """
            CREATE TABLE IF NOT EXISTS {db}.dead_letters (
                src_topic LowCardinality(String),
                src_partition Int32,
                src_offset Int64,
                message_ts DateTime64(3, 'UTC'),
                received_at DateTime64(6, 'UTC'),
                reason String,
                size_bytes UInt32,
                dlq_topic LowCardinality(String)
            )
            ENGINE = ReplacingMergeTree(received_at)
            PARTITION BY toYYYYMM(message_ts)
            ORDER BY (src_topic, src_partition, src_offset)
            """,
            """
            CREATE TABLE IF NOT EXISTS {db}.agent_runs (
                run_id String,
                host String,
                topic LowCardinality(String),
                group_id LowCardinality(String),
                started_at DateTime64(3, 'UTC'),
                updated_at DateTime64(6, 'UTC'),
                status LowCardinality(String),
                consumed UInt64,
                stored UInt64,
                dead_lettered UInt64,
                unpriced UInt64,
                batches UInt64,
                commit_failures UInt64,
                write_retries UInt64,
                flagged Map(LowCardinality(String), UInt64)
            )
            ENGINE = ReplacingMergeTree(updated_at)
            ORDER BY run_id
            """,
            "CREATE VIEW IF NOT EXISTS {db}.v_records AS SELECT * FROM {db}.records FINAL",
            "CREATE VIEW IF NOT EXISTS {db}.v_dead_letters AS SELECT * FROM {db}.dead_letters FINAL",
            "CREATE VIEW IF NOT EXISTS {db}.v_agent_runs AS SELECT * FROM {db}.agent_runs FINAL",
        ),
    ),
    Migration(
        2,
        "hallucination and refusal scores",
        (
            "ALTER TABLE {db}.records ADD COLUMN IF NOT EXISTS hallucination Nullable(Float32) AFTER relevance",
            "ALTER TABLE {db}.records ADD COLUMN IF NOT EXISTS refusal Nullable(Float32) AFTER hallucination",
            # a view's columns are fixed when it is created: recreate it to expose the new ones
            "CREATE OR REPLACE VIEW {db}.v_records AS SELECT * FROM {db}.records FINAL",
        ),
    ),
    Migration(
        3,
        "drift windows",
        (
            """
            CREATE TABLE IF NOT EXISTS {db}.drift_windows (
                stream LowCardinality(String),
                kind LowCardinality(String),
                tenant LowCardinality(String),
                model LowCardinality(String),
                route LowCardinality(String),
                window_start DateTime64(3, 'UTC'),
                window_end DateTime64(3, 'UTC'),
                n UInt32,
                score Float64,
                threshold Float64,
                p_value Nullable(Float64),
                drifted UInt8,
                method LowCardinality(String),
                reference_n UInt32,
                computed_at DateTime64(6, 'UTC')
            )
            ENGINE = ReplacingMergeTree(computed_at)
            PARTITION BY toYYYYMM(window_end)
            ORDER BY (stream, tenant, model, route, window_end)
            """,
            "CREATE VIEW IF NOT EXISTS {db}.v_drift_windows AS SELECT * FROM {db}.drift_windows FINAL",
        ),
    ),
    Migration(
        4,
        "review queue",
        (
            # first enqueue wins: the version is the bitwise NOT of enqueued_at, so the earliest row is the
            # greatest version; a replay's later copy collapses into the first. No partition by enqueued_at,
            # so both copies always meet in one partition.
            """
            CREATE TABLE IF NOT EXISTS {db}.review_items (
                queue LowCardinality(String),
                record_id String,
                enqueued_at DateTime64(6, 'UTC'),
                record_ts DateTime64(3, 'UTC'),
                tenant LowCardinality(String),
                model LowCardinality(String),
                route LowCardinality(String),
                priority Int32,
                reasons Array(LowCardinality(String)),
                rule LowCardinality(String),
                control UInt8,
                first_wins UInt64 MATERIALIZED bitNot(toUInt64(toUnixTimestamp64Micro(enqueued_at)))
            )
            ENGINE = ReplacingMergeTree(first_wins)
            PARTITION BY toYYYYMM(record_ts)
            ORDER BY (queue, record_id)
            """,
            # events of one claim (claimed, renewed, released) share claim_id; the view shows its latest
            """
            CREATE TABLE IF NOT EXISTS {db}.review_claims (
                queue LowCardinality(String),
                record_id String,
                annotator String,
                claimed_at DateTime64(6, 'UTC'),
                lease_until DateTime64(6, 'UTC'),
                released UInt8,
                claim_id String,
                event_at DateTime64(6, 'UTC')
            )
            ENGINE = ReplacingMergeTree(event_at)
            ORDER BY (queue, record_id, claim_id)
            """,
            # label_id is the idempotency key; the first copy of a label wins, like review_items
            """
            CREATE TABLE IF NOT EXISTS {db}.review_labels (
                label_id String,
                queue LowCardinality(String),
                record_id String,
                annotator String,
                labeled_at DateTime64(6, 'UTC'),
                verdicts Map(String, Enum8('confirm' = 1, 'reject' = 2)),
                severity UInt8,
                note String,
                corrected_response Nullable(String),
                preference Enum8('none' = 0, 'corrected' = 1, 'original' = 2),
                source LowCardinality(String),
                claim_id String,
                first_wins UInt64 MATERIALIZED bitNot(toUInt64(toUnixTimestamp64Micro(labeled_at)))
            )
            ENGINE = ReplacingMergeTree(first_wins)
            ORDER BY (queue, record_id, label_id)
            """,
            # one row per name; a later row (disable, new token) replaces it
            """
            CREATE TABLE IF NOT EXISTS {db}.annotators (
                name String,
                token_sha256 String,
                created_at DateTime64(3, 'UTC'),
                is_admin UInt8,
                disabled UInt8,
                updated_at DateTime64(6, 'UTC')
            )
            ENGINE = ReplacingMergeTree(updated_at)
            ORDER BY name
            """,
            "CREATE VIEW IF NOT EXISTS {db}.v_review_items AS SELECT * FROM {db}.review_items FINAL",
            "CREATE VIEW IF NOT EXISTS {db}.v_review_claims AS SELECT * FROM {db}.review_claims FINAL",
            "CREATE VIEW IF NOT EXISTS {db}.v_review_labels AS SELECT * FROM {db}.review_labels FINAL",
            "CREATE VIEW IF NOT EXISTS {db}.v_annotators AS SELECT * FROM {db}.annotators FINAL",
        ),
    ),
    Migration(
        7,
        "stored embeddings, evaluation runs and scores, re-scoring history",
        (
            # per record and text field, the encoder's unit vector quantised to Int8 with one Float32 scale
            # (v ~ vector * scale / 127): 384 bytes for MiniLM instead of 1.5 KiB; written with the record
            """
            CREATE TABLE IF NOT EXISTS {db}.record_embeddings (
                record_id String,
                ts DateTime64(3, 'UTC'),
                tenant LowCardinality(String),
                model LowCardinality(String),
                route LowCardinality(String),
                field LowCardinality(String),
                encoder LowCardinality(String),
                scale Float32,
                vector Array(Int8),
                ingested_at DateTime64(6, 'UTC')
            )
            ENGINE = ReplacingMergeTree(ingested_at)
            PARTITION BY toYYYYMM(ts)
            ORDER BY (tenant, model, route, field, ts, record_id)
            """,
            # one row per evaluation run (`lookout evaluate ragas`), replaced as it progresses
            """
            CREATE TABLE IF NOT EXISTS {db}.eval_runs (
                run_id String,
                kind LowCardinality(String),
                started_at DateTime64(3, 'UTC'),
                updated_at DateTime64(6, 'UTC'),
                status LowCardinality(String),
                filter String,
                metrics Array(LowCardinality(String)),
                llm_model String,
                records UInt64,
                scored Map(LowCardinality(String), UInt64),
                means Map(LowCardinality(String), Float64)
            )
            ENGINE = ReplacingMergeTree(updated_at)
            ORDER BY run_id
            """,
            # one value per (run, record, metric); NULL when the metric did not apply (no reference, no context)
            """
            CREATE TABLE IF NOT EXISTS {db}.eval_scores (
                run_id String,
                record_id String,
                metric LowCardinality(String),
                value Nullable(Float64),
                record_ts DateTime64(3, 'UTC'),
                tenant LowCardinality(String),
                model LowCardinality(String),
                route LowCardinality(String),
                scored_at DateTime64(6, 'UTC')
            )
            ENGINE = ReplacingMergeTree(scored_at)
            ORDER BY (run_id, record_id, metric)
            """,
            # scores of a detector version re-run over stored records (`lookout rescore`), beside records' own;
            # re-running the same version replaces its rows, so a rerun never duplicates
            """
            CREATE TABLE IF NOT EXISTS {db}.record_scores (
                record_id String,
                detector LowCardinality(String),
                detector_version LowCardinality(String),
                score Nullable(Float32),
                flagged UInt8,
                record_ts DateTime64(3, 'UTC'),
                tenant LowCardinality(String),
                model LowCardinality(String),
                route LowCardinality(String),
                run_id String,
                scored_at DateTime64(6, 'UTC')
            )
            ENGINE = ReplacingMergeTree(scored_at)
            ORDER BY (detector, detector_version, record_id)
            """,
            # one row per re-scoring run with its (ts, id) cursor: a rerun with the same arguments resumes there
            """
            CREATE TABLE IF NOT EXISTS {db}.rescore_runs (
                run_id String,
                detector LowCardinality(String),
                detector_version LowCardinality(String),
                since DateTime64(3, 'UTC'),
                until DateTime64(3, 'UTC'),
                filter String,
                started_at DateTime64(3, 'UTC'),
                updated_at DateTime64(6, 'UTC'),
                status LowCardinality(String),
                cursor_ts DateTime64(3, 'UTC'),
                cursor_id String,
                scored UInt64,
                skipped_no_text UInt64,
                from_stored_embeddings UInt64
            )
            ENGINE = ReplacingMergeTree(updated_at)
            ORDER BY run_id
            """,
            "CREATE VIEW IF NOT EXISTS {db}.v_record_embeddings AS SELECT * FROM {db}.record_embeddings FINAL",
            "CREATE VIEW IF NOT EXISTS {db}.v_eval_runs AS SELECT * FROM {db}.eval_runs FINAL",
            "CREATE VIEW IF NOT EXISTS {db}.v_eval_scores AS SELECT * FROM {db}.eval_scores FINAL",
            "CREATE VIEW IF NOT EXISTS {db}.v_record_scores AS SELECT * FROM {db}.record_scores FINAL",
            "CREATE VIEW IF NOT EXISTS {db}.v_rescore_runs AS SELECT * FROM {db}.rescore_runs FINAL",
        ),
    ),
    Migration(
        6,
        "user feedback",
        (
            # one row per feedback event id (a replayed event collapses); no partition by ts, so copies always meet
            """
            CREATE TABLE IF NOT EXISTS {db}.feedback (
                event_id String,
                ts DateTime64(3, 'UTC'),
                received_at DateTime64(6, 'UTC'),
                record_id String,
                trace_id String,
                kind LowCardinality(String),
                value Nullable(Float32),
                user_id String,
                comment String,
                src_topic LowCardinality(String),
                src_partition Int32,
                src_offset Int64
            )
            ENGINE = ReplacingMergeTree(received_at)
            ORDER BY event_id
            """,
            "CREATE VIEW IF NOT EXISTS {db}.v_feedback AS SELECT * FROM {db}.feedback FINAL",
            # the join happens when read, so feedback that arrived before its record joins once the record lands
            "CREATE VIEW IF NOT EXISTS {db}.v_record_feedback AS " + _RECORD_FEEDBACK,
        ),
    ),
    Migration(
        5,
        "repetition, tone, formality, novelty and near-duplicate scores",
        (
            "ALTER TABLE {db}.records ADD COLUMN IF NOT EXISTS repetition Nullable(Float32) AFTER refusal",
            "ALTER TABLE {db}.records ADD COLUMN IF NOT EXISTS tone Nullable(Float32) AFTER repetition",
            "ALTER TABLE {db}.records ADD COLUMN IF NOT EXISTS formality Nullable(Float32) AFTER tone",
            # written by the drift step (per-stream state), not by a detector
            "ALTER TABLE {db}.records ADD COLUMN IF NOT EXISTS novelty Nullable(Float32) AFTER formality",
            "ALTER TABLE {db}.records ADD COLUMN IF NOT EXISTS near_duplicate Nullable(Float32) AFTER novelty",
            "CREATE OR REPLACE VIEW {db}.v_records AS SELECT * FROM {db}.records FINAL",
        ),
    ),
    Migration(
        8,
        "load-shedding weight",
        (
            # 1: nothing shed; 1/rate: kept while shedding; 0: expensive signals skipped (see agent/shedding.py)
            "ALTER TABLE {db}.records ADD COLUMN IF NOT EXISTS shed_weight Float32 DEFAULT 1",
            "CREATE OR REPLACE VIEW {db}.v_records AS SELECT * FROM {db}.records FINAL",
        ),
    ),
    Migration(
        9,
        "LLM judge",
        (
            "ALTER TABLE {db}.records ADD COLUMN IF NOT EXISTS hallucination_judge Nullable(Float32)",
            "ALTER TABLE {db}.records ADD COLUMN IF NOT EXISTS judge_weight Nullable(Float32)",
            "CREATE OR REPLACE VIEW {db}.v_records AS SELECT * FROM {db}.records FINAL",
        ),
    ),
    Migration(
        10,
        "review UI sessions",
        (
            # the cookie holds a random id; only its sha256 is stored, with the token hash it was opened under
            # (a re-issued token ends the sessions of the old one)
            """
            CREATE TABLE IF NOT EXISTS {db}.review_sessions (
                session_sha256 String,
                annotator String,
                token_sha256 String,
                created_at DateTime64(3, 'UTC'),
                expires_at DateTime64(3, 'UTC'),
                revoked UInt8,
                updated_at DateTime64(6, 'UTC')
            )
            ENGINE = ReplacingMergeTree(updated_at)
            ORDER BY session_sha256
            """,
            "CREATE VIEW IF NOT EXISTS {db}.v_review_sessions AS SELECT * FROM {db}.review_sessions FINAL",
        ),
    ),
    Migration(
        11,
        "drift references",
        (
            # per stream and signal, the drift step's reference as it filled: embedding references as Int8 unit
            # vectors plus a scale each (as in record_embeddings), score references as values; the latest wins
            """
            CREATE TABLE IF NOT EXISTS {db}.drift_references (
                tenant LowCardinality(String),
                model LowCardinality(String),
                route LowCardinality(String),
                stream LowCardinality(String),
                encoder LowCardinality(String),
                size UInt32,
                scales Array(Float32),
                vectors Array(Array(Int8)),
                values Array(Float64),
                reference_end DateTime64(3, 'UTC'),
                created_at DateTime64(6, 'UTC')
            )
            ENGINE = ReplacingMergeTree(created_at)
            ORDER BY (tenant, model, route, stream, encoder)
            """,
            "CREATE VIEW IF NOT EXISTS {db}.v_drift_references AS SELECT * FROM {db}.drift_references FINAL",
        ),
    ),
    Migration(
        12,
        "records identified by (tenant, id)",
        (
            # a copy of a (tenant, id) under another (model, ts) gets a tombstone: its own key, superseded = 1 and a
            # newer version, so FINAL keeps the tombstone and v_records drops it (RecordSink writes them)
            "ALTER TABLE {db}.records ADD COLUMN IF NOT EXISTS superseded UInt8 DEFAULT 0",
            # copies stored before this version: all but the latest ingested copy of each (tenant, id)
            """
            INSERT INTO {db}.records (id, ts, ingested_at, tenant, model, superseded)
            SELECT id, ts, now64(6), tenant, model, 1 FROM (
                SELECT id, ts, tenant, model,
                    row_number() OVER (PARTITION BY tenant, id ORDER BY ingested_at DESC, src_offset DESC) AS newer
                FROM {db}.records FINAL WHERE superseded = 0
            ) WHERE newer > 1 SETTINGS max_partitions_per_insert_block = 0
            """,
            V_RECORDS,
        ),
    ),
    Migration(
        13,
        "spans, sessions and call errors",
        (
            # OpenTelemetry span ids, the conversation a call belongs to, and why the call failed ('' when it did not)
            "ALTER TABLE {db}.records ADD COLUMN IF NOT EXISTS span_id String DEFAULT '' AFTER trace_id",
            "ALTER TABLE {db}.records ADD COLUMN IF NOT EXISTS parent_span_id String DEFAULT '' AFTER span_id",
            "ALTER TABLE {db}.records ADD COLUMN IF NOT EXISTS session_id String DEFAULT '' AFTER parent_span_id",
            "ALTER TABLE {db}.records ADD COLUMN IF NOT EXISTS error String DEFAULT '' AFTER latency_ms",
            V_RECORDS,
        ),
    ),
    Migration(
        15,
        "thresholds version per record",
        (
            # the version of the thresholds file (detectors.thresholds_file) the record's flags were made under;
            # '' when the agent ran without one (and for records stored before this version)
            "ALTER TABLE {db}.records ADD COLUMN IF NOT EXISTS thresholds_version LowCardinality(String) DEFAULT ''",
            V_RECORDS,
        ),
    ),
    *REVIEW_MIGRATIONS,
    *CASCADE_MIGRATIONS,
)


def applied_versions(client: Client, db: str, cluster: str | None = None) -> set[int]:
    """Versions already recorded."""
    create = (
        f"CREATE TABLE IF NOT EXISTS {db}.schema_migrations "
        "(version UInt32, name String, applied_at DateTime64(3, 'UTC')) "
        "ENGINE = ReplacingMergeTree ORDER BY version"
    )
    for statement in on_cluster(create, cluster):
        client.command(statement)
    rows = client.query(f"SELECT DISTINCT version FROM {db}.schema_migrations").result_rows
    return {int(r[0]) for r in rows}


def migrate(
    client: Client, db: str, raw_text_ttl_days: int | None = None, cluster: str | None = None
) -> list[Migration]:
    """Apply every migration not yet recorded, then the text TTL; returns what was applied.

    With ``cluster``, every statement is rewritten by :func:`on_cluster`.
    """
    done = applied_versions(client, db, cluster)
    applied = []
    for migration in sorted(MIGRATIONS, key=lambda m: m.version):
        if migration.version in done:
            continue
        for statement in migration.statements:
            for command in on_cluster(statement.format(db=db), cluster):
                client.command(command)
        client.command(
            f"INSERT INTO {db}.schema_migrations (version, name, applied_at) "
            "VALUES ({v:UInt32}, {n:String}, now64(3))",
            parameters={"v": migration.version, "n": migration.name},
        )
        applied.append(migration)
    if raw_text_ttl_days is not None:
        set_text_ttl(client, db, raw_text_ttl_days, cluster)
    return applied


def set_text_ttl(client: Client, db: str, days: int, cluster: str | None = None) -> None:
    """Expire raw text columns ``days`` after the record's ``ts`` (scores and counters stay).

    On a cluster the TTL goes on the replicated ``records_local`` tables (a Distributed table stores nothing).
    """
    table = f"{db}.records" if cluster is None else f"{db}.records{LOCAL_SUFFIX} ON CLUSTER {cluster}"
    for column in TEXT_COLUMNS:
        client.command(
            f"ALTER TABLE {table} MODIFY COLUMN {column} {TEXT_COLUMN_TYPES[column]} "
            f"TTL toDateTime(ts) + INTERVAL {int(days)} DAY"
        )


def record_columns(client: Client, db: str) -> set[str]:
    """Column names of ``records`` as they exist now."""
    rows = client.query(
        "SELECT name FROM system.columns WHERE database = {db:String} AND table = 'records'",
        parameters={"db": db},
    ).result_rows
    return {str(r[0]) for r in rows}
