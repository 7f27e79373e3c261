"""Training and evaluation of the shipped detector heads (``lookout train-heads``, ``lookout eval``)."""
