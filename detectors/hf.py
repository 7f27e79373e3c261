"""Hugging Face transformers, quiet: no progress bars or warnings on stderr when a local model loads."""

from __future__ import annotations


def quiet_transformers() -> None:
    """Turn off transformers' progress bars and everything below errors in its logging (imports transformers)."""
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()  # type: ignore[no-untyped-call]  # untyped in transformers
    hf_logging.set_verbosity_error()  # type: ignore[no-untyped-call]  # untyped in transformers
