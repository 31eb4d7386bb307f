"""Server memory after uploading big phone-size photos: what the app keeps of each upload.

Starts the app from ``--repo`` (this checkout, or an older one to compare), uploads ``--photos``
distinct 35-megapixel JPEGs (7000 x 5000, a few MB each, like a phone's) one after the other in
one browser session, waits for each to be analysed on the Overview page, and reports the
server's resident memory before and after, as a difference.

    .venv/bin/python bench/bench_upload_memory.py --photos 20
    .venv/bin/python bench/bench_upload_memory.py --photos 20 --repo /tmp/old-checkout
"""

from __future__ import annotations

import argparse
import io
import tempfile
from pathlib import Path

import numpy as np
from appserver import CHROMIUM, CHROMIUM_ARGS, open_session, rss_mb, server, upload
from PIL import Image
from playwright.sync_api import sync_playwright

ROOT = Path(__file__).resolve().parents[1]


def phone_photo(index: int, path: Path) -> Path:
    """A 7000 x 5000 JPEG with smooth gradients and fine noise (compresses like a photo), unique per index."""
    h, w = 5000, 7000
    rng = np.random.default_rng(index)
    y = np.linspace(0, 1, h, dtype=np.float32)[:, None]
    x = np.linspace(0, 1, w, dtype=np.float32)[None, :]
    channels = [(x * 200 + index * 7) % 255 + 0 * y, y * 180 + 40 + 0 * x, ((x + y) * 120) % 255]
    base = np.stack(channels, axis=-1)
    noise = rng.integers(0, 12, (h // 10, w // 10, 1), dtype=np.uint8).repeat(10, 0).repeat(10, 1)
    pixels = np.clip(base + noise, 0, 255).astype(np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, "JPEG", quality=85)
    path.write_bytes(buffer.getvalue())
    return path


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--photos", type=int, default=20)
    p.add_argument("--repo", type=Path, default=ROOT, help="the checkout whose app is measured")
    args = p.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        photos = [phone_photo(i, Path(folder) / f"phone_{i:02d}.jpg") for i in range(args.photos)]
        sizes = [p.stat().st_size / 1e6 for p in photos]
        with server(args.repo) as (url, pid), sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
            page = open_session(browser, url)
            before = rss_mb(pid)
            for photo in photos:
                upload(page, photo)
            after = rss_mb(pid)
            browser.close()
    print(f"app from {args.repo}: {args.photos} uploads of 7000x5000 JPEGs ({min(sizes):.1f}-{max(sizes):.1f} MB each)")
    print(f"server RSS before {before:.0f} MB, after {after:.0f} MB: +{after - before:.0f} MB "
          f"(+{(after - before) / args.photos:.1f} MB per upload)")


if __name__ == "__main__":
    main()
