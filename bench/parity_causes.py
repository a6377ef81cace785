#!/usr/bin/env python3
"""Effect of each known parity cause, measured on the reference predictors themselves (same
random weights, RGB.byte.tif, bench/parity.py's prompts): the reference's mask against the mask
with one step done the way samgeo-rs did it before (bench/RESULTS.md, "Parity").

- SAM upsampling: one bilinear sampling of the 256² logits per original pixel (old host) vs
  256² → 1024², crop, → original size (reference).
- SAM2 mask choice: best-scored of the 3 multimask candidates (old host, samexporter's decoder)
  vs the single-mask token with dynamic multimask via stability (reference).
- SAM2 padding: two not-a-point tokens (old host + samexporter's graph) vs one.

    bench/.venv/bin/python bench/parity_causes.py
"""

import os
import statistics
import sys
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from parity import POINTS, MULTI, Reference, iou, read_rgb  # noqa: E402


def one_step_upsample(low, input_hw, orig_hw):
    """The old host's SAM upsampling: for each original pixel, bilinear in the 256² grid at
    ((i + 0.5) * s - 0.5), s = input/orig * 256/1024, clamped to the grid."""
    (ih, iw), (h, w) = input_hw, orig_hw

    def taps(n, scale):
        g = np.clip((np.arange(n) + 0.5) * scale - 0.5, 0, 255)
        i0 = np.floor(g).astype(int)
        return i0, np.minimum(i0 + 1, 255), (g - i0).astype(np.float32)

    y0, y1, wy = taps(h, ih / h * 0.25)
    x0, x1, wx = taps(w, iw / w * 0.25)
    rows = low[y0] * (1 - wy)[:, None] + low[y1] * wy[:, None]
    return rows[:, x0] * (1 - wx)[None, :] + rows[:, x1] * wx[None, :]


def main():
    torch.set_num_threads(int(os.environ.get("OMP_NUM_THREADS", "2")))
    real = Path(os.environ.get("SAMGEO_REAL_DATA", "/work/shared/data/rasters"))
    img = read_rgb(real / "RGB.byte.tif")
    prompts = [dict(point_coords=np.array([p], float), point_labels=np.array([1])) for p in POINTS]
    prompts += [dict(point_coords=np.array(p, float), point_labels=np.array(l)) for p, l in MULTI]

    sam = Reference("sam", img)
    p = sam.predictor
    up = []
    for kw in prompts:
        masks, _, low = p.predict(multimask_output=False, **kw)
        old = one_step_upsample(low[0], p.input_size, p.original_size) > 0
        up.append(iou(masks[0], old))
    del sam

    sam2 = Reference("sam2", img)
    p = sam2.predictor
    choice, pad = [], []
    for kw in prompts:
        single, _, _ = p.predict(multimask_output=False, **kw)
        multi, scores, _ = p.predict(multimask_output=True, **kw)
        choice.append(iou(single[0], multi[int(np.argmax(scores))]))
        coords = np.concatenate([kw["point_coords"], [[0.0, 0.0]]])
        labels = np.concatenate([kw["point_labels"], [-1]])
        padded, _, _ = p.predict(point_coords=coords, point_labels=labels, multimask_output=False)
        pad.append(iou(single[0], padded[0]))

    def row(name, vals):
        return f"| {name} | {statistics.median(vals):.3f} | {min(vals):.3f} | {max(vals):.3f} |"

    print("| cause (old way vs reference, on the reference's own logits) | median IoU | min | max |")
    print("|---|---:|---:|---:|")
    print(row("SAM: one-step upsampling vs 256→1024→crop→original", up))
    print(row("SAM2: best of 3 multimask vs single-mask token + stability fallback", choice))
    print(row("SAM2: two padding tokens vs one", pad))
    print(f"(load average {os.getloadavg()[0]:.1f})")


if __name__ == "__main__":
    main()
