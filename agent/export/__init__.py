"""Export reviewed records as training and labeling data: SFT, DPO, JSONL, Parquet, Label Studio, Argilla.

``select`` picks the rows (one per record id, latest label, ``(ts, id)`` order), ``formats`` (and
``parquet``) turn rows into files, ``run`` writes them atomically with ``manifest.json``, ``commands`` wires
``lookout export`` and the Label Studio commands into the CLI.
"""
