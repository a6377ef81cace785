#!/usr/bin/env python3
"""Check the demo ONNX models (scripts/gen_demo_models.py) with onnxruntime.

Builds synthetic images in numpy, does the host's preprocessing, runs the
encoders and decoders and asserts the documented behaviour.  Exits non-zero
on the first failure.  Prints model sizes and per-model run times.

Usage:  python3 scripts/check_demo_models.py [--models models/demo]
"""

from __future__ import annotations

import argparse
import hashlib
import os
import sys
import tempfile
import time

import numpy as np
import onnxruntime as ort

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import gen_demo_models as gen  # noqa: E402

GREEN = (40, 160, 40)
RED = (220, 30, 30)
BLUE = (30, 60, 200)
TIMINGS: dict[str, list[float]] = {}
FAILURES: list[str] = []


def check(cond: bool, what: str) -> None:
    print(("  ok   " if cond else "  FAIL ") + what)
    if not cond:
        FAILURES.append(what)


# ---------------------------------------------------------------------------
# numpy helpers
# ---------------------------------------------------------------------------
def resize_bilinear(img: np.ndarray, out_h: int, out_w: int) -> np.ndarray:
    """Half-pixel bilinear resize without antialiasing (cv2.INTER_LINEAR / torch align_corners=False).

    img: [..., H, W] float."""
    def axis_weights(n_in, n_out):
        src = (np.arange(n_out) + 0.5) * (n_in / n_out) - 0.5
        src = np.clip(src, 0, n_in - 1)
        i0 = np.floor(src).astype(np.int64)
        i1 = np.minimum(i0 + 1, n_in - 1)
        return i0, i1, (src - i0).astype(np.float32)

    h, w = img.shape[-2:]
    y0, y1, wy = axis_weights(h, out_h)
    x0, x1, wx = axis_weights(w, out_w)
    rows = img[..., y0, :] * (1 - wy)[:, None] + img[..., y1, :] * wy[:, None]
    return rows[..., x0] * (1 - wx) + rows[..., x1] * wx


def canvas(h: int, w: int, squares: list[tuple[tuple[int, int, int, int], tuple[int, int, int]]]):
    """RGB uint8 [H,W,3] green field with coloured squares ((r0, r1, c0, c1), rgb), ends exclusive."""
    img = np.zeros((h, w, 3), np.uint8)
    img[:] = GREEN
    for (r0, r1, c0, c1), rgb in squares:
        img[r0:r1, c0:c1] = rgb
    return img


def square_mask(h, w, rect):
    m = np.zeros((h, w), bool)
    r0, r1, c0, c1 = rect
    m[r0:r1, c0:c1] = True
    return m


def iou(a: np.ndarray, b: np.ndarray) -> float:
    union = np.logical_or(a, b).sum()
    return float(np.logical_and(a, b).sum() / union) if union else 1.0


class Model:
    def __init__(self, path: str):
        so = ort.SessionOptions()
        so.intra_op_num_threads = 2
        so.log_severity_level = 3
        self.name = os.path.basename(path)
        self.sess = ort.InferenceSession(path, so, providers=["CPUExecutionProvider"])

    def __call__(self, **feeds):
        t = time.perf_counter()
        out = self.sess.run(None, feeds)
        TIMINGS.setdefault(self.name, []).append(time.perf_counter() - t)
        return out


# ---------------------------------------------------------------------------
# SAM
# ---------------------------------------------------------------------------
SAM_MEAN = np.array([123.675, 116.28, 103.53], np.float32)
SAM_STD = np.array([58.395, 57.12, 57.375], np.float32)


def sam_preprocess(img: np.ndarray):
    h, w = img.shape[:2]
    scale = 1024.0 / max(h, w)
    nh, nw = int(h * scale + 0.5), int(w * scale + 0.5)
    x = resize_bilinear(img.astype(np.float32).transpose(2, 0, 1), nh, nw)
    x = (x - SAM_MEAN[:, None, None]) / SAM_STD[:, None, None]
    out = np.zeros((1, 3, 1024, 1024), np.float32)
    out[0, :, :nh, :nw] = x
    return out, (nw / w, nh / h)


def check_sam(models_dir: str) -> None:
    print("SAM")
    enc = Model(os.path.join(models_dir, "sam_encoder.onnx"))
    dec = Model(os.path.join(models_dir, "sam_decoder.onnx"))
    h, w = 384, 512
    red_r, blue_r = (100, 200, 150, 260), (250, 330, 350, 450)
    img = canvas(h, w, [(red_r, RED), (blue_r, BLUE)])
    red, blue = square_mask(h, w, red_r), square_mask(h, w, blue_r)
    field = ~(red | blue)
    x, (sx, sy) = sam_preprocess(img)
    (emb,) = enc(image=x)
    check(emb.shape == (1, 256, 64, 64) and emb.dtype == np.float32, f"encoder output {emb.shape}")
    expect_red = (np.array(RED) - SAM_MEAN) / SAM_STD
    check(np.allclose(emb[0, :3, 18, 25], expect_red, atol=1e-3), "embedding carries the patch colour")
    check(np.all(emb[0, 3:] == 0) and np.all(emb[0, :, 60:, :] == 0), "other channels and padding are 0")

    def run(points, labels, pad=True):
        pts = np.array(points, np.float32).reshape(-1, 2) * [sx, sy]
        lab = np.array(labels, np.float32)
        if pad:  # SamPredictor's ONNX example appends a padding point when there is no box
            pts = np.concatenate([pts, [[0.0, 0.0]]])
            lab = np.concatenate([lab, [-1.0]])
        masks, scores, low = dec(
            image_embeddings=emb,
            point_coords=pts[None].astype(np.float32),
            point_labels=lab[None].astype(np.float32),
            mask_input=np.zeros((1, 1, 256, 256), np.float32),
            has_mask_input=np.zeros(1, np.float32),
            orig_im_size=np.array([h, w], np.float32),
        )
        return masks, scores, low

    masks, scores, low = run([[200, 150]], [1])
    check(masks.shape == (1, 4, h, w) and low.shape == (1, 4, 256, 256), f"masks {masks.shape}, low_res {low.shape}")
    check(np.allclose(scores, [gen.SAM_IOU]), f"iou_predictions {scores.ravel().tolist()}")
    v = iou(masks[0, 0] > 0, red)
    check(v >= 0.9, f"click in red -> red square (IoU {v:.3f})")
    areas = [(masks[0, i] > 0).sum() for i in range(4)]
    check(areas[1] <= areas[0] <= areas[3] and areas[0] == areas[2], f"mask areas nest tight<=T<=loose {areas}")
    check(np.abs(masks).max() > 5, "logits are steep")

    masks, _, _ = run([[140, 90], [270, 210]], [2, 3], pad=False)
    v = iou(masks[0, 0] > 0, red)
    check(v >= 0.9, f"box around red -> red square (IoU {v:.3f})")

    masks, _, _ = run([[200, 150], [50, 50]], [1, 0])
    v = iou(masks[0, 0] > 0, red)
    check(v >= 0.9, f"red click + green negative -> red square (IoU {v:.3f})")

    masks, _, _ = run([[50, 50]], [1])
    v = iou(masks[0, 0] > 0, field)
    check(v >= 0.9, f"click in green -> field without the squares (IoU {v:.3f})")

    masks, _, _ = run([[400, 290], [140, 90], [270, 210]], [1, 2, 3], pad=False)
    v = iou(masks[0, 0] > 0, red | blue)
    check(v < 0.5, f"blue point + red box average to one colour (IoU with squares {v:.3f}, documented mix)")

    masks, _, _ = run([[50, 50]], [0])
    check((masks > 0).sum() == 0, "only a negative point -> empty masks")
    masks, _, _ = run([[200, 150], [0, 0], [0, 0]], [1, -1, -1])
    check(iou(masks[0, 0] > 0, red) >= 0.9, "padding points (-1) are ignored")

    # a portrait image exercises the other crop branch
    h2, w2 = 300, 200
    img2 = canvas(h2, w2, [((40, 140, 50, 150), RED)])
    x2, (sx2, sy2) = sam_preprocess(img2)
    (emb2,) = enc(image=x2)
    m2, _, _ = dec(
        image_embeddings=emb2,
        point_coords=np.array([[[100 * sx2, 90 * sy2], [0, 0]]], np.float32),
        point_labels=np.array([[1, -1]], np.float32),
        mask_input=np.zeros((1, 1, 256, 256), np.float32),
        has_mask_input=np.ones(1, np.float32),
        orig_im_size=np.array([h2, w2], np.float32),
    )
    v = iou(m2[0, 0] > 0, square_mask(h2, w2, (40, 140, 50, 150)))
    check(m2.shape == (1, 4, h2, w2) and v >= 0.9, f"portrait {h2}x{w2}: shape {m2.shape}, IoU {v:.3f}")


# ---------------------------------------------------------------------------
# SAM2
# ---------------------------------------------------------------------------
IMNET_MEAN = np.array([0.485, 0.456, 0.406], np.float32)
IMNET_STD = np.array([0.229, 0.224, 0.225], np.float32)


def sam2_preprocess(img: np.ndarray) -> np.ndarray:
    x = resize_bilinear(img.astype(np.float32).transpose(2, 0, 1) / 255.0, 1024, 1024)
    return ((x - IMNET_MEAN[:, None, None]) / IMNET_STD[:, None, None])[None].astype(np.float32)


def check_sam2(models_dir: str) -> None:
    print("SAM2")
    enc = Model(os.path.join(models_dir, "sam2_encoder.onnx"))
    dec = Model(os.path.join(models_dir, "sam2_decoder.onnx"))
    h, w = 384, 512
    red_r, blue_r = (100, 200, 150, 260), (250, 330, 350, 450)
    img = canvas(h, w, [(red_r, RED), (blue_r, BLUE)])
    red, blue = square_mask(h, w, red_r), square_mask(h, w, blue_r)
    field = ~(red | blue)
    hr0, hr1, emb = enc(image=sam2_preprocess(img))
    check(hr0.shape == (1, 32, 256, 256) and hr1.shape == (1, 64, 128, 128) and emb.shape == (1, 256, 64, 64),
          f"encoder outputs {hr0.shape} {hr1.shape} {emb.shape}")
    sx, sy = 1024.0 / w, 1024.0 / h

    def run(rows):
        """rows: list of (points, labels); rows padded to equal N with label -1."""
        n = max(len(r[1]) for r in rows)
        pc = np.zeros((len(rows), n, 2), np.float32)
        pl = -np.ones((len(rows), n), np.float32)
        for i, (pts, lab) in enumerate(rows):
            pc[i, : len(lab)] = np.array(pts, np.float32) * [sx, sy]
            pl[i, : len(lab)] = lab
        masks, scores = dec(
            image_embed=emb, high_res_feats_0=hr0, high_res_feats_1=hr1,
            point_coords=pc, point_labels=pl,
            mask_input=np.zeros((len(rows), 1, 256, 256), np.float32),
            has_mask_input=np.zeros(len(rows), np.float32),
        )
        return masks, scores

    def full(m):  # host: upsample the 256x256 logits to the original size, threshold at 0
        return resize_bilinear(m, h, w) > 0

    masks, scores = run([([[200, 150]], [1])])
    check(masks.shape == (1, 3, 256, 256) and scores.shape == (1, 3), f"masks {masks.shape}, scores {scores.shape}")
    check(np.allclose(scores, [gen.SAM2_IOU]) and np.argmax(scores[0]) == 0, f"scores {scores.ravel().tolist()}, best = index 0")
    check(np.abs(masks).max() <= gen.SAM2_CLAMP, "logits clamped to [-32, 32]")
    v = iou(full(masks[0, 0]), red)
    check(v >= 0.9, f"click in red -> red square (IoU {v:.3f})")
    areas = [(masks[0, i] > 0).sum() for i in range(3)]
    check(areas[1] <= areas[0] <= areas[2], f"mask areas nest 0.5T<=T<=2T {areas}")

    masks, _ = run([([[140, 90], [270, 210]], [2, 3])])
    v = iou(full(masks[0, 0]), red)
    check(v >= 0.9, f"box around red -> red square (IoU {v:.3f})")
    masks, _ = run([([[200, 150], [50, 50]], [1, 0])])
    v = iou(full(masks[0, 0]), red)
    check(v >= 0.9, f"red click + green negative -> red square (IoU {v:.3f})")
    masks, _ = run([([[50, 50]], [1])])
    v = iou(full(masks[0, 0]), field)
    check(v >= 0.9, f"click in green -> field without the squares (IoU {v:.3f})")

    masks, scores = run([
        ([[200, 150]], [1]),
        ([[400, 290], [200, 150]], [1, 0]),
        ([[140, 90], [270, 210], [20, 20]], [2, 3, -1]),
    ])
    check(masks.shape == (3, 3, 256, 256) and scores.shape == (3, 3), f"L=3 batch shapes {masks.shape} {scores.shape}")
    vs = [iou(full(masks[0, 0]), red), iou(full(masks[1, 0]), blue), iou(full(masks[2, 0]), red)]
    check(min(vs) >= 0.9, "L=3 batch: red click / blue click + red negative / red box -> " + ", ".join(f"{v:.3f}" for v in vs))
    single, _ = run([([[400, 290], [200, 150]], [1, 0])])
    check(np.allclose(single[0], masks[1], atol=1e-4), "batched row equals the same prompt run alone")
    masks, _ = run([([[50, 50]], [-1])])
    check((masks > 0).sum() == 0, "only padding -> empty masks")


# ---------------------------------------------------------------------------
# SAM3
# ---------------------------------------------------------------------------
def check_sam3(models_dir: str) -> None:
    print("SAM3")
    enc = Model(os.path.join(models_dir, "sam3_image_encoder.onnx"))
    lang = Model(os.path.join(models_dir, "sam3_language_encoder.onnx"))
    dec = Model(os.path.join(models_dir, "sam3_decoder.onnx"))
    tok = gen.ClipTokenizer()
    h, w = 480, 640
    rects = {
        "red1": (60, 160, 80, 200),
        "red2": (280, 400, 400, 540),
        "blue": (300, 420, 100, 220),
    }
    img = canvas(h, w, [(rects["red1"], RED), (rects["red2"], RED), (rects["blue"], BLUE)])
    sq = {k: square_mask(h, w, r) for k, r in rects.items()}
    x = resize_bilinear(img.astype(np.float32).transpose(2, 0, 1), 1008, 1008)
    x = np.clip(np.round(x), 0, 255).astype(np.uint8)
    vis = enc(image=x)
    names = [o.name for o in enc.sess.get_outputs()]
    shapes = {n: v.shape for n, v in zip(names, vis)}
    check(shapes["backbone_fpn_0"] == (1, 256, 288, 288) and shapes["vision_pos_enc_2"] == (1, 256, 72, 72),
          "image encoder output shapes")
    check(np.allclose(vis[3][0, :3, 10, 10], np.array(GREEN) / 127.5 - 1, atol=1e-3), "fpn_0 carries the colour")
    vis = dict(zip(names, vis))

    check(tok.tokenize("red")[0, :4].tolist() == [gen.CLIP_SOT, tok.encoder["red</w>"], gen.CLIP_EOT, 0],
          f"tokenize('red') = {tok.tokenize('red')[0, :4].tolist()}")

    def run(text, box=None):
        tokens = tok.tokenize(text)
        lmask, lfeat, lemb = lang(tokens=tokens)
        if box is None:
            bc, bl, bm = np.zeros((1, 1, 4), np.float32), np.ones((1, 1), np.int64), np.ones((1, 1), bool)
        else:
            x0, y0, x1, y1 = box
            bc = np.array([[[(x0 + x1) / 2 / w, (y0 + y1) / 2 / h, (x1 - x0) / w, (y1 - y0) / h]]], np.float32)
            bl, bm = np.ones((1, 1), np.int64), np.zeros((1, 1), bool)
        boxes, scores, masks = dec(
            original_height=np.array(h, np.int64), original_width=np.array(w, np.int64),
            language_mask=lmask, language_features=lfeat, language_embeds=lemb,
            box_coords=bc, box_labels=bl, box_masks=bm, **vis,
        )
        return boxes, scores, masks

    def matches(masks, keys):
        got = [m[0] for m in masks]
        best = [max((iou(g, sq[k]) for g in got), default=0.0) for k in keys]
        return best

    lmask, lfeat, lemb = lang(tokens=tok.tokenize("red"))
    check(lmask.dtype == bool and lmask.shape == (1, 32) and lmask[0, :3].tolist() == [False] * 3 and lmask[0, 3],
          "text_attention_mask is True on padding")
    check(lfeat.shape == (32, 1, 256) and lemb.shape == (32, 1, 1024), "language encoder shapes")

    boxes, scores, masks = run("red")
    best = matches(masks, ["red1", "red2"])
    check(masks.shape[0] == 2 and masks.dtype == bool and masks.shape[1:] == (1, h, w) and min(best) >= 0.85,
          f"'red' -> {masks.shape[0]} instances, IoU {[round(b, 3) for b in best]}")
    check(scores.shape == (2,) and np.allclose(scores, gen.SAM3_SCORE), f"scores {scores.tolist()}")
    exp = sorted([[r[2], r[0], r[3], r[1]] for k, r in rects.items() if k.startswith("red")])
    got = sorted(boxes.tolist())
    check(boxes.shape == (2, 4) and np.allclose(got, exp, atol=4), f"boxes {np.round(got).tolist()} ~ {exp}")

    boxes, scores, masks = run("purple")
    check(masks.shape == (0, 1, h, w) and boxes.shape == (0, 4) and scores.shape == (0,), f"'purple' -> {masks.shape}")

    boxes, scores, masks = run("everything")
    best = matches(masks, ["red1", "red2", "blue"])
    check(masks.shape[0] == 3 and min(best) >= 0.85, f"'everything' -> {masks.shape[0]} instances, IoU {[round(b, 3) for b in best]}")
    _, _, masks = run("visual")
    check(masks.shape[0] == 3, f"'visual' -> {masks.shape[0]} instances")
    _, _, masks = run("a blue square")
    best = matches(masks, ["blue"])
    check(masks.shape[0] == 1 and best[0] >= 0.85, f"'a blue square' -> {masks.shape[0]} instance, IoU {best[0]:.3f}")

    r = rects["red1"]
    boxes, scores, masks = run("visual", box=(r[2] - 10, r[0] - 10, r[3] + 10, r[1] + 10))
    best = matches(masks, ["red1", "red2"])
    check(masks.shape[0] == 2 and min(best) >= 0.85, f"box exemplar on one red square -> {masks.shape[0]} instances, IoU {[round(b, 3) for b in best]}")

    # several box slots, the padded ones masked out (samexporter's fixed-capacity layout)
    bc = np.zeros((3, 1, 4), np.float32)
    b = rects["blue"]
    bc[0, 0] = [(b[2] + b[3]) / 2 / w, (b[0] + b[1]) / 2 / h, (b[3] - b[2]) / w, (b[1] - b[0]) / h]
    lmask, lfeat, lemb = lang(tokens=tok.tokenize("red"))
    boxes, scores, masks = dec(
        original_height=np.array(h, np.int64), original_width=np.array(w, np.int64),
        language_mask=lmask, language_features=lfeat, language_embeds=lemb,
        box_coords=bc, box_labels=np.ones((3, 1), np.int64), box_masks=np.array([[False, True, True]]), **vis,
    )
    best = matches(masks, ["blue"])
    check(masks.shape[0] == 1 and best[0] >= 0.85, f"3 box slots (1 valid, on blue) + text 'red' -> box wins: {masks.shape[0]} instance, IoU {best[0]:.3f}")


def check_determinism(models_dir: str) -> None:
    print("determinism")
    with tempfile.TemporaryDirectory() as tmp:
        import contextlib
        import io

        with contextlib.redirect_stdout(io.StringIO()):
            gen.main(["--out", tmp])
        for fname, _ in gen.MODELS:
            a = open(os.path.join(tmp, fname), "rb").read()
            b = open(os.path.join(models_dir, fname), "rb").read()
            check(a == b, f"{fname} regenerates byte-identical ({hashlib.sha256(a).hexdigest()[:16]})")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--models", default=os.path.join(gen.REPO_ROOT, "models", "demo"))
    ap.add_argument("--only", choices=["sam", "sam2", "sam3"], nargs="*")
    args = ap.parse_args()
    t0 = time.perf_counter()
    if not all(os.path.exists(os.path.join(args.models, f)) for f, _ in gen.MODELS):
        print(f"models missing in {args.models}: generating them")
        gen.main(["--out", args.models])
    check_determinism(args.models)
    for name, fn in [("sam", check_sam), ("sam2", check_sam2), ("sam3", check_sam3)]:
        if not args.only or name in args.only:
            fn(args.models)
    print("\nmodel                        size (bytes)  runs  mean run time")
    for fname, _ in gen.MODELS:
        t = TIMINGS.get(fname, [])
        size = os.path.getsize(os.path.join(args.models, fname))
        mean = f"{1000 * np.mean(t):8.1f} ms" if t else "       -"
        print(f"{fname:<28} {size:>12}  {len(t):>4}  {mean}")
    print(f"total check time {time.perf_counter() - t0:.1f} s")
    if FAILURES:
        print(f"\n{len(FAILURES)} FAILED:\n  " + "\n  ".join(FAILURES))
        return 1
    print("\nall demo model checks passed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
