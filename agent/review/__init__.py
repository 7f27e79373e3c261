"""Human review: route scored records to queues, hand items to annotators, store their labels.

``rules`` decides which records enter which queue; ``sink`` writes them (``review_items`` + a Kafka topic)
inside the agent's flush-then-commit step; ``store`` holds claims and labels in ClickHouse; ``pages`` (the
annotator UI) and ``api`` (JSON) are one FastAPI router built by ``app``, which ``lookout review serve`` runs
and ``lookout run`` mounts next to ``/metrics`` when ``review.serve_ui`` is on. ``labelstudio`` is the Label
Studio round trip. ``overlap`` decides which items take two annotators' labels and ``gold`` mixes items with
known answers into the queues (``lookout review agreement`` reads both).
"""
