"""The disagreement gallery: thumbnails of the images where an aux head and main disagree; a click picks one.

Written as a small ``st.components.v2`` component because Streamlit has no clickable image:
``st.image`` takes no click, and a button under each thumbnail would make the picture itself
inert. The component draws the thumbnails as buttons and reports the clicked image's index
as a trigger value; everything else (what the images are, what a click does) stays in Python.
"""

from __future__ import annotations

import base64
from collections.abc import Callable, Sequence
from typing import Any

import streamlit as st

__all__ = ["gallery"]

_HTML = "<div class='gnet-gallery' role='list'></div>"
_CSS = """
.gnet-gallery { display: grid; grid-template-columns: repeat(auto-fill, minmax(300px, 1fr)); gap: 10px; }
.gnet-thumb { display: flex; gap: 8px; align-items: flex-start; text-align: left; padding: 6px;
  border: 1px solid #d0d7de; border-radius: 6px; background: #fff; cursor: pointer; font: 12px/1.4 sans-serif;
  color: #1f2328; }
.gnet-thumb:hover, .gnet-thumb:focus { border-color: #4C78A8; box-shadow: 0 0 0 2px #4C78A833; outline: none; }
.gnet-thumb img { width: 72px; height: 72px; image-rendering: pixelated; flex: none; background: #000; }
.gnet-thumb b { display: block; margin-bottom: 2px; }
"""
_JS = """
export default function (component) {
  const { data, setTriggerValue, parentElement } = component;
  const root = parentElement.querySelector('.gnet-gallery');
  root.replaceChildren();
  for (const item of (data && data.items) || []) {
    const button = document.createElement('button');
    button.className = 'gnet-thumb';
    button.type = 'button';
    button.title = item.tooltip;
    button.setAttribute('aria-label', item.tooltip);
    button.setAttribute('role', 'listitem');
    const img = document.createElement('img');
    img.src = item.src;
    img.alt = item.title;
    const text = document.createElement('div');
    const title = document.createElement('b');
    title.textContent = item.title;
    text.appendChild(title);
    for (const line of item.lines) {
      const div = document.createElement('div');
      div.textContent = line;
      text.appendChild(div);
    }
    button.append(img, text);
    button.onclick = () => setTriggerValue('picked', item.index);
    root.appendChild(button);
  }
}
"""
_COMPONENT = st.components.v2.component("gnet_disagreement_gallery", html=_HTML, css=_CSS, js=_JS)


def gallery(items: Sequence[dict[str, Any]], *, key: str, on_pick: Callable[[], None]) -> None:
    """Draw ``items`` (each: ``index``, ``png`` bytes, ``title``, ``lines``, ``tooltip``) as clickable thumbnails.

    ``on_pick`` runs as a callback on a click, before the next run draws anything; it reads
    the clicked index as ``st.session_state[key].picked``.
    """
    data = {
        "items": [
            {
                "index": int(item["index"]),
                "src": "data:image/png;base64," + base64.b64encode(item["png"]).decode(),
                "title": item["title"],
                "lines": list(item["lines"]),
                "tooltip": item["tooltip"],
            }
            for item in items
        ]
    }
    _COMPONENT(key=key, data=data, on_picked_change=on_pick)
