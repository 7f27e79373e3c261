"""Sinks: where scored records and dead letters go. A write returns only when the batch is durable."""
