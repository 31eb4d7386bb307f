"""The Heads page's "Your own classes": a zip of class folders in, the three heads retrained on a frozen trunk, out.

The fit itself is :mod:`dashboard.cache.retrain`; the overlay it writes is kept in this session's
state, and the sidebar stacks it (``SOURCE+labels=PATH``) while the weights it was fitted on stay
selected, so every page then speaks the new classes. "Back to the original classes" drops it.
"""

from __future__ import annotations

import io
import uuid
import zipfile
from pathlib import Path

import pandas as pd
import streamlit as st

import gnet
from dashboard.cache import analyses
from dashboard.cache import retrain as retraining
from dashboard.state import Keys, Selection
from gnet.data.images import SUPPORTED_EXTENSIONS

__all__ = ["render"]

_ZIP, _BY_CLASS = "A zip of class folders", "Class by class"
_ACCURACY = st.column_config.NumberColumn("held-out accuracy", format="percent")


def render(sel: Selection) -> None:
    st.header("Your own classes")
    st.caption(
        "The paper keeps one linear layer after global average pooling so that the net can be adapted to other label "
        "sets easily. Here the trunk stays frozen, and only the last linear layer of each head (main's fc, aux1.fc2, "
        "aux2.fc2) is fitted on your classes: a fifth of each class is held out to score them."
    )
    found = st.session_state.get(Keys.LABELS_OVERLAY)
    if found is not None and sel.weights.endswith(f"+labels={found['path']}"):
        _retrained(sel, found)
        return
    name, archive = _input()
    if archive is None:
        return
    if not st.button("Retrain the three heads", key=Keys.OWN_CLASSES_RUN, type="primary", icon=":material/model_training:"):
        return
    run_id = uuid.uuid4().hex
    st.session_state[Keys.OWN_CLASSES_ACTIVE] = run_id
    bar = st.progress(0.0, text="Recording the frozen trunk's features...")
    st.button("Stop", key=Keys.OWN_CLASSES_STOP, on_click=_stop, icon=":material/stop:",
              help="Stops after the batch in progress; nothing is kept.")

    def progress(done: float) -> bool:
        bar.progress(min(done, 1.0), text="Recording the frozen trunk's features..." if done < 0.9 else
                     "Fitting the three last layers...")
        return st.session_state.get(Keys.OWN_CLASSES_ACTIVE) == run_id

    try:
        path, card, content = retraining.retrain_heads(sel.weights, sel.device, name, archive, progress)
    except gnet.GNetError as e:
        st.error(str(e))
        return
    except retraining.Stopped:
        st.info("Stopped. Nothing was kept from the interrupted fit.")
        return
    finally:
        bar.empty()
    st.session_state[Keys.LABELS_OVERLAY] = {"base": sel.weights, "path": path, "card": card, "content": content}
    st.rerun()


def _stop() -> None:
    st.session_state.pop(Keys.OWN_CLASSES_ACTIVE, None)


def _input() -> tuple[str, bytes | None]:
    """(a name, the zip's bytes) from an uploaded zip, or from the classes added one by one (zipped here, so that
    both go through the one reader, :func:`gnet.data.archive.class_tree`); None while there is nothing to fit."""
    how = st.radio("Your images", (_ZIP, _BY_CLASS), horizontal=True, key=Keys.OWN_CLASSES_INPUT)
    if how == _ZIP:
        upload = st.file_uploader(
            "A zip of class folders: <class>/<image>", type=["zip"], key=Keys.OWN_CLASSES_ZIP,
            help="At least 2 classes of at least 2 images each; a few dozen images per class fit in seconds.",
        )
        return ("", None) if upload is None else (upload.name, upload.getvalue())
    added: dict[str, list[tuple[str, bytes]]] = st.session_state.setdefault(Keys.OWN_CLASSES_ADDED, {})
    with st.form(Keys.OWN_CLASS_ADD, clear_on_submit=True, border=False):
        left, right = st.columns([1, 2])
        label = left.text_input("Class name", key=Keys.OWN_CLASS_NAME, placeholder="e.g. mug")
        images = right.file_uploader("Its images", type=list(SUPPORTED_EXTENSIONS), accept_multiple_files=True,
                                     key=Keys.OWN_CLASS_IMAGES)
        if st.form_submit_button("Add this class", icon=":material/add:"):
            label = label.strip()
            if not label or "/" in label or label.startswith("."):
                st.error("Name the class (letters, digits, spaces; no '/' and not starting with '.') before adding it.")
            elif not images:
                st.error(f"Drop some images of {label!r} before adding the class.")
            else:
                added.setdefault(label, []).extend((f.name, f.getvalue()) for f in images)
    if not added:
        return "", None
    st.caption("Added so far: " + ", ".join(f"**{c}** ({len(files)} images)" for c, files in added.items()))
    if st.button("Start over", key=Keys.OWN_CLASSES_CLEAR, icon=":material/delete:"):
        st.session_state.pop(Keys.OWN_CLASSES_ADDED, None)
        st.rerun()
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for label, files in added.items():
            for i, (file_name, data) in enumerate(files):
                archive.writestr(f"{label}/{i:04d}-{Path(file_name).name}", data)
    return "your classes.zip", buffer.getvalue()


def _retrained(sel: Selection, found: dict) -> None:
    card = found["card"]
    classes = card["classes"]
    st.success(
        f"The three heads now answer in your {len(classes)} classes ({', '.join(classes[:6])}"
        f"{', ...' if len(classes) > 6 else ''}), fitted on {card['fit']['images']:,} images of "
        f"{card['data']['name']} in {card['seconds']:.1f} s. Every page uses them while these weights stay selected."
    )
    held = card["held_out"]
    table = pd.DataFrame({"head": list(held["accuracy"]), "accuracy": list(held["accuracy"].values())})
    st.dataframe(table, hide_index=True, column_config={"accuracy": _ACCURACY})
    st.caption(f"On {held['images']:,} held-out images ({held['share_of_each_class']:.0%} of each class).")
    if sel.image is not None and not sel.image_error:
        try:
            new = analyses.analysis(sel.weights, sel.device, sel.digest, sel.image)
            old = analyses.analysis(found["base"], sel.device, sel.digest, sel.image)
        except gnet.GNetError as e:
            st.error(str(e))
        else:
            rows = [{"head": f"{head} (your classes)", "top class": p.top[0].label, "probability": p.top[0].prob}
                    for head, p in new.heads.items()]
            first = old.heads["main"].top[0]
            rows.append({"head": "main (original classes)", "top class": first.label, "probability": first.prob})
            st.markdown(f"**{sel.image_name}**, in your classes and in the original ones:")
            st.dataframe(pd.DataFrame(rows), hide_index=True,
                         column_config={"probability": st.column_config.NumberColumn(format="percent")})
    left, right = st.columns(2)
    left.download_button("Download the overlay (labels.pt)", found["content"], file_name="labels.pt",
                         mime="application/octet-stream", on_click="ignore", icon=":material/download:")
    if right.button("Back to the original classes", key=Keys.OWN_CLASSES_BACK, icon=":material/undo:"):
        del st.session_state[Keys.LABELS_OVERLAY]
        st.rerun()
