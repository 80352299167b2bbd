"""Training: the loop, checkpoints, logs and outputs of one run."""
