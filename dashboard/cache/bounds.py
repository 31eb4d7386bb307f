"""Every bound of the dashboard's caches, set here and nowhere else.

Every cache in :mod:`dashboard.cache` outlives a session and is shared by all of them, so each
has a bound (the README's "A server for a class" lists them). Entries also expire after ``TTL_S``
seconds, so an idle server gives its memory back.
"""

TTL_S = 3600
MODELS_KEPT = 3  # loaded weights (ImageNet's GoogLeNet is ~50 MB on the device)
DEVICES_KEPT = 8  # device descriptions (a line of text each)
UPLOAD_DIGESTS_KEPT = 64  # sha256 of uploaded checkpoints (64 hex characters each)
DECODED_KEPT = 32  # decoded images, each at most DISPLAY_SIDE^2 x 3 bytes (3 MiB): 96 MiB at most
ANALYSES_KEPT = 24  # one forward pass's activations: ~0.4 MB at 64 px, ~15 MB at 224 px
TABLES_KEPT = 64  # small derived tables (head summaries, gradient tables, costs)
FIGURES_KEPT = 64  # plotly figures of a module's branches (one image, one module: ~50 KB)
ATTRIBUTIONS_KEPT = 32  # attribution heatmaps (input-sized float32 maps, small)
UPLOADS_MAX_BYTES = 256 << 20  # uploaded checkpoint files on disk (the upload limit is 64 MB each)
ATTRIBUTION_BUDGET_S = 60.0  # the longest one attribution request may run, by this machine's own measurement
CHANNEL_RESULTS_KEPT = 64  # visualizations (one input-sized image each), example indexes (~2 MB), importance tables
CIRCUITS_KEPT = 64  # a channel's connections one way: 2k channels with a K x K kernel each (a few KB)
ABLATIONS_KEPT = 64  # one image's three heads with some knock-outs (a few class probabilities)
SETS_KEPT = 2  # labelled image sets (the Fashion-MNIST test set: 10,000 28x28 images, 8 MB)
SET_TTL_S = 600  # a set is listed again after 10 minutes, so a folder the user fixed is seen
LOGIT_SETS_KEPT = 4  # the heads' logits over a set: 3 x images x classes float32 (1.2 MB for the test set)
SET_RESULTS_KEPT = 8  # comparisons, early-exit curves, galleries and their thumbnails (small), per weights and set
DESIGNS_KEPT = 64  # the design lab's cost comparisons (a few dozen numbers per design)
DESIGN_MEASURES_KEPT = 32  # the design lab's measured memory and latency (a table row per design)
