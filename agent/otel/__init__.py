"""OpenTelemetry in: OTLP trace exports (JSON or protobuf) → LLM call records, and the OTLP/HTTP receiver.

- ``payload``: OTLP bytes → :class:`~agent.otel.payload.Span` values (the Collector's ``otlp_json`` and
  ``otlp_proto`` Kafka encodings, and OTLP/HTTP bodies);
- ``conventions``: which spans are LLM calls or retrievals, and an LLM span → :class:`~agent.types.Sample`
  under the GenAI, OpenLLMetry and OpenInference conventions;
- ``step``: the trace step of the record path (joins retrieved documents to the LLM spans of their trace);
- ``receiver``: ``POST /v1/traces`` → the consumed Kafka topic.
"""
