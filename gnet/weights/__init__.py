"""Weights: the sources a user can name, loading them with their model card, checkpoint files, the torch hub, overlays stacked on weights, and the bundled model's export.
"""
