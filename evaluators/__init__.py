"""Batch evaluation jobs over stored records (ragas, evidently, detector quality); see the evaluators issue."""
