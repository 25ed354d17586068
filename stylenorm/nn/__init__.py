"""Building blocks with no notion of a model: norms and their registry, conditional norms,
statistics, losses, colour matching, metrics and fused operations.
"""
