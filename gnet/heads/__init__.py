"""The three heads over a whole labelled set: their logits, statistics, the aux heads as early exits, the in-domain score and aux heads distilled on a frozen trunk.
"""
