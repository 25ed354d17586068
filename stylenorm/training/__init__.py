"""Training: the shared loop, one task per model, data, checkpoints, run logs, plots and
distillation.
"""
