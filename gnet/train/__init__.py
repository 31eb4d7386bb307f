"""Training: one run's settings, the loop, one run's optimisation state, what a step reads, several processes (torchrun), the gradient log and the recorded runs.
"""
