"""Running a loaded model to look inside it: the probe (taps, hooks, knock-outs), one image's analysis, attributions, feature visualization, dataset examples, branch importance, gradient norms and the labelled sets they run over.
"""
