"""Pure scoring: records in, scores out. Imports nothing from ``agent``; models are injected."""
