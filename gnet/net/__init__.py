"""GoogLeNet itself: its named points (layers), the network and its variants, the losses, the cost model and the paper's Table 1.

Nothing here reads weights or images; everything above builds on it.
"""
