"""Training: the separator trainer, the built-in grounding model trainer, distributed setup, checkpoints."""
