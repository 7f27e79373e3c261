"""lookout agent: Kafka source, decode, score, ClickHouse sinks, commit; CLI and demo."""
