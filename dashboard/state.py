"""The session's state: the only module that names ``st.session_state`` keys.

Widgets take their ``key=`` from :class:`Keys`, so a key is spelled once. The sidebar's
choice (weights, device, image) is kept as one :class:`Selection` that every page reads.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import streamlit as st
from PIL import Image

from gnet.data.samples import Sample

__all__ = [
    "DEFAULT_WEIGHTS_ENV",
    "IMAGE_FROM_SAMPLES",
    "IMAGE_FROM_SET",
    "Keys",
    "PickedImage",
    "Selection",
    "default_weights",
    "open_channel",
    "pick_image",
    "picked_image",
    "resolved_device",
    "selection",
    "set_selection",
    "show_sample",
]

DEFAULT_WEIGHTS_ENV = "GNET_WEIGHTS"  # the weights source the sidebar starts on (tests pin it)


class Keys:
    """Widget and state keys, one constant each."""

    SELECTION = "selection"
    IMAGE_MODE = "image_mode"
    SAMPLE = "sample"
    UPLOAD = "image_upload"
    CAMERA = "camera"
    WEIGHTS = "weights"
    CHECKPOINT = "checkpoint_upload"
    BRANCH_MODULE = "branches_module"
    BRANCH_FOCUS = "branches_focus_branch"
    BRANCH_CHANNEL = "branches_focus_channel"
    GRADIENT_SOURCE = "gradients_source"
    GRADIENT_LOSSES = "gradients_losses"
    GRADIENT_VARIANTS = "gradients_variants"
    GRADIENT_INITS = "gradients_inits"
    GRADIENT_QUANTITY = "gradients_quantity"
    GRADIENT_AUX_LAYERS = "gradients_aux_layers"
    GRADIENT_RUN = "gradients_run"
    GRADIENT_RUNS = "gradients_runs"
    LIVE_BATCH_NORM = "live_batch_norm"
    LIVE_AUX = "live_aux"
    LIVE_INIT = "live_init"
    LIVE_STEPS = "live_steps"
    LIVE_START = "live_start"
    LIVE_STOP = "live_stop"
    LIVE_FORM = "live_form"
    LIVE_RUN = "live_run"  # the session's last live training run (dashboard.live.LiveRun), kept across reruns
    LIVE_ACTIVE = "live_active"  # the id of the live run in progress; any other script run removes it
    COST_SIZE = "cost_input_size"
    COST_METRIC = "cost_metric"
    DESIGN_STEM = "design_stem"
    DESIGN_REDUCTIONS = "design_reductions"
    DESIGN_POOL_PROJ = "design_pool_proj"
    DESIGN_CLASSIFIER = "design_classifier"
    DESIGN_AUX = "design_aux"
    DESIGN_SIZE = "design_input_size"
    DESIGN_CLASSES = "design_num_classes"
    DESIGN_BATCH = "design_batch"
    DESIGN_MEASURE = "design_measure"
    DESIGN_CURVE_X = "design_curve_x"
    ATTR_METHODS = "attributions_methods"
    ATTR_HEAD = "attributions_head"
    ATTR_TARGET = "attributions_target"
    ATTR_MODULE = "attributions_module"
    ATTR_BRANCH = "attributions_branch"
    ATTR_STEPS = "attributions_ig_steps"
    ATTR_SAMPLES = "attributions_ig_samples"
    ATTR_RUN = "attributions_run"
    ATTR_STOP = "attributions_stop"
    ATTR_ACTIVE = "attributions_active"  # the id of the computation in progress; Stop (or any other run) removes it
    ATTR_STOPPED = "attributions_stopped"  # set by Stop, shown once by the next run
    URL_READ = "url_read"  # the query parameters this session has already taken a value from (dashboard.url)
    AUX_OVERLAY_ON = "aux_overlay_on"
    AUX_OVERLAY = "aux_overlay_upload"
    IMAGENET_DOWNLOAD = "imagenet_download"
    # The Channels page; the Inception branches page sets the first three to open a channel there.
    CHANNEL_MODULE = "channels_module"
    CHANNEL_BRANCH = "channels_branch"
    CHANNEL_INDEX = "channels_index"  # suffixed with -<module>-<branch>: each branch has its own range
    CHANNEL_JUMP = "channels_jump"
    CHANNEL_JUMP_ERROR = "channels_jump_error"  # the sentence of the last mistyped channel, shown by the page
    CHANNEL_OPEN = "channels_open"  # the branches page's button
    CHANNEL_STEPS = "channels_steps"
    CHANNEL_VISUALIZE = "channels_visualize"
    CHANNEL_RANKING = "channels_ranking"
    CHANNEL_DATA = "channels_data"
    CHANNEL_FOLDER = "channels_folder"
    CHANNEL_IMAGES = "channels_images"
    CHANNEL_BUILD_INDEX = "channels_build_index"
    CIRCUIT_K = "circuit_k"
    CIRCUIT_RANK = "circuit_rank"
    CIRCUIT_THUMBNAILS = "circuit_thumbnails"  # suffixed with -<direction>
    CIRCUIT_OPEN = "circuit_open"  # suffixed with -<direction>-<sign>-<rank>: a strip's buttons
    DIVERSE_RUN = "diverse_run"
    FAMILIES_RUN = "families_run"
    FAMILIES_SHOWN = "families_shown"
    KNOCKOUT_BRANCH = "knockout_branch"  # suffixed with -<module>-<branch>
    KNOCKOUT_CHANNELS = "knockout_channels"  # suffixed with -<module>
    IMPORTANCE_HEAD = "importance_head"
    IMPORTANCE_RUN = "importance_run"
    CLASS_VIS_CLASS = "class_vis_class"
    CLASS_VIS_RUN = "class_vis_run"
    HEADS_FOLDER = "heads_folder"  # the image folder the Heads page compares the heads over ("" = the default set)
    HEADS_GALLERY = "heads_gallery"  # the disagreement gallery (a clickable component)
    HEADS_PROBES = "heads_probes"  # the button that computes the linear-probe curve when none is stored
    OWN_CLASSES_ZIP = "own_classes_zip"  # the Heads page's upload of a <class>/<image> zip
    OWN_CLASSES_RUN = "own_classes_run"  # its "Retrain the three heads" button
    OWN_CLASSES_BACK = "own_classes_back"  # its "Back to the original classes" button
    OWN_CLASSES_STOP = "own_classes_stop"  # its Stop button while a fit runs
    OWN_CLASSES_ACTIVE = "own_classes_active"  # the id of the fit in progress (cleared by Stop)
    OWN_CLASSES_INPUT = "own_classes_input"  # "a zip" or "class by class"
    OWN_CLASS_NAME = "own_class_name"  # the class being added, class by class
    OWN_CLASS_IMAGES = "own_class_images"  # its images
    OWN_CLASS_ADD = "own_class_add"  # the "Add this class" button
    OWN_CLASSES_ADDED = "own_classes_added"  # {class name: [(file name, bytes), ...]} added so far
    OWN_CLASSES_CLEAR = "own_classes_clear"  # the "Start over" button
    LABELS_OVERLAY = "labels_overlay"  # (base weights, overlay path, card): the heads retrained in this session
    PICKED = "picked_image"  # the dataset image clicked in the gallery (a PickedImage)
    DOMAIN_SAMPLE = "domain_sample"  # the out-of-domain banner's "use a sample" button


@dataclass(frozen=True)
class Selection:
    """What the sidebar chose: the weights, the device and the image every page looks at.

    ``image`` is None when no usable image was chosen; ``image_error`` and ``weights_error``
    then hold the library's sentence so a page can say why it has nothing to show.
    """

    weights: str  # a name in gnet.SOURCES or a checkpoint path
    device: str
    weights_label: str = ""  # an uploaded checkpoint's own file name (weights is then a temporary path)
    image: Image.Image | None = None
    image_name: str = ""
    digest: str = ""
    sample: Sample | None = None  # set when the image is a bundled sample (it may know its true class)
    label: str | None = None  # the true class of an image picked from a labelled set
    image_error: str | None = None
    weights_error: str | None = None

    def true_label(self, classes: list[str]) -> str | None:
        """The image's true class among ``classes`` when it is a labelled sample or a picked dataset image."""
        if self.label is not None:
            return self.label if self.label in classes else None
        return self.sample.true_label(classes) if self.sample is not None else None

    @property
    def model_key(self) -> tuple[str, str, str]:
        """The arguments of dashboard.cache.models.model for this selection."""
        return self.weights, self.device, self.weights_label


def default_weights() -> str:
    """The weights source the sidebar starts on: ``$GNET_WEIGHTS`` or ``auto``."""
    return os.environ.get(DEFAULT_WEIGHTS_ENV, "").strip() or "auto"


def resolved_device() -> tuple[str, str | None]:
    """The device every page runs on (:func:`gnet.resolve_device`), and why it cannot be used if so (then ``cpu``)."""
    import gnet  # torch: imported when a page needs it, not with the navigation

    try:
        return str(gnet.resolve_device()), None
    except gnet.GNetError as e:
        return "cpu", str(e)


def set_selection(sel: Selection) -> None:
    st.session_state[Keys.SELECTION] = sel


def selection() -> Selection:
    """The sidebar's choice for this run (the router draws the sidebar before any page)."""
    return st.session_state[Keys.SELECTION]


def open_channel(module: str, branch: str, channel: int) -> None:
    """Make the Channels page start on ``module.branch:channel`` (its widgets read these keys)."""
    st.session_state[Keys.CHANNEL_MODULE] = module
    st.session_state[Keys.CHANNEL_BRANCH] = branch
    st.session_state[f"{Keys.CHANNEL_INDEX}-{module}-{branch}"] = channel


# The sidebar's image sources that other pages switch to: the samples, and an image picked from a
# dataset (the Heads page's gallery).
IMAGE_FROM_SAMPLES = "Sample"
IMAGE_FROM_SET = "Test set"


@dataclass(frozen=True)
class PickedImage:
    """An image of a labelled set, made the app's current image from the Heads page's gallery."""

    name: str
    image: Image.Image
    digest: str
    label: str | None  # its true class, when the set knows it


def pick_image(picked: PickedImage) -> None:
    """Make ``picked`` the current image: the sidebar switches to its dataset source.

    Call it from a widget callback: callbacks run before the sidebar's widgets are drawn, the
    only moment their values may be set.
    """
    st.session_state[Keys.PICKED] = picked
    st.session_state[Keys.IMAGE_MODE] = IMAGE_FROM_SET


def picked_image() -> PickedImage | None:
    """The image last picked from a dataset in this session, if any."""
    return st.session_state.get(Keys.PICKED)


def show_sample(sample: Sample) -> None:
    """Make a bundled sample the current image (from a widget callback, like :func:`pick_image`)."""
    st.session_state[Keys.IMAGE_MODE] = IMAGE_FROM_SAMPLES
    st.session_state[Keys.SAMPLE] = sample
