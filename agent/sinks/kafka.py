"""The dead-letter topic sink: original bytes, with the reason and source coordinates in headers."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from agent.sinks.base import BatchingSink, SinkError
from agent.types import DeadLetter

REASON_HEADER = "lookout.reason"
TOPIC_HEADER = "lookout.source.topic"
PARTITION_HEADER = "lookout.source.partition"
OFFSET_HEADER = "lookout.source.offset"
STEP_HEADER = "lookout.step"


def dlq_headers(failure: DeadLetter) -> list[tuple[str, bytes]]:
    """Headers of a DLQ message: why, where the original was, and which step rejected it."""
    return [
        (REASON_HEADER, failure.reason.encode("utf-8")),
        (TOPIC_HEADER, failure.origin.topic.encode("utf-8")),
        (PARTITION_HEADER, str(failure.origin.partition).encode()),
        (OFFSET_HEADER, str(failure.origin.offset).encode()),
        (STEP_HEADER, failure.step.encode("utf-8")),
    ]


class DeadLetterTopicSink(BatchingSink[DeadLetter]):
    """Produces each failure to the DLQ topic and waits for every acknowledgement.

    Args:
        producer: A ``kafka.KafkaProducer`` (acks=all).
        topic: The dead-letter topic.
        timeout_s: Longest wait for acknowledgements.
    """

    metric_label = "kafka_dlq"

    def __init__(self, producer: Any, topic: str, timeout_s: float = 30.0) -> None:
        super().__init__()
        self.producer = producer
        self.topic = topic
        self.timeout_s = timeout_s

    def write(self, batch: Sequence[DeadLetter]) -> None:
        """Send all, then block until all are acknowledged."""
        try:
            futures = [self.producer.send(self.topic, value=f.raw, key=f.key, headers=dlq_headers(f)) for f in batch]
            self.producer.flush(timeout=self.timeout_s)
            for future in futures:
                future.get(timeout=self.timeout_s)
        except Exception as exc:
            raise SinkError(f"produce to dead-letter topic {self.topic} failed: {exc}") from exc

    def close(self) -> None:
        """Close the producer."""
        self.producer.close(timeout=self.timeout_s)
