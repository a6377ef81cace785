#!/usr/bin/env python3
"""Measures the means of issue #13 on random-weight SAM ViT-B (same seed as make_models.py),
each as an interleaved A/B in one process run, with the load average printed before and after
(ratios survive a loaded machine better than absolute times):

  decoder   official export (1 prompt per call, orig_im_size as small as the host passes) vs
            `export-models --decoder fast` (1 and 16 prompt rows per call): time per prompt,
            and max |difference| of low_res_masks / iou_predictions (parity);
  int8      encoder fp32 vs `--quantize int8` (dynamic): time, and IoU of the masks decoded from
            each embedding for the same prompts (random weights: IoU says little, see RESULTS);
  fp16      embedding stored as fp16 and widened back vs fp32: mask pixel agreement;
  session   encoder in a child process per option set (CPU arena on/off, memory pattern,
            optimisation level): time and VmHWM.

  bench/speed_means.py [--out bench/out/speed] [--skip session,int8,...]
Runs with the Python that has torch + segment-anything + onnxruntime (bench/venv.sh, or
SAMGEO_PY_VENV). Never part of CI (minutes of CPU)."""

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "scripts"))
SEED = 20240917


def load():
    return open("/proc/loadavg").read().split()[:3]


def build(out: Path):
    import torch
    from export_models import export_sam, quantize_int8
    from segment_anything import sam_model_registry

    out.mkdir(parents=True, exist_ok=True)
    enc, std, fast = out / "encoder.onnx", out / "decoder.onnx", out / "decoder_fast.onnx"
    if enc.exists() and std.exists() and fast.exists() and (out / "encoder.int8.onnx").exists():
        return
    torch.manual_seed(SEED)
    sam = sam_model_registry["vit_b"](checkpoint=None).eval()
    export_sam(sam, None if enc.exists() else enc, std)
    export_sam(sam, None, fast, "fast")
    quantize_int8(enc)


def session(path, **opts):
    import onnxruntime as ort

    so = ort.SessionOptions()
    so.intra_op_num_threads = opts.get("threads", 2)
    so.enable_cpu_mem_arena = opts.get("arena", True)
    so.enable_mem_pattern = opts.get("pattern", True)
    level = opts.get("level", "all")
    so.graph_optimization_level = {
        "all": ort.GraphOptimizationLevel.ORT_ENABLE_ALL,
        "extended": ort.GraphOptimizationLevel.ORT_ENABLE_EXTENDED,
        "basic": ort.GraphOptimizationLevel.ORT_ENABLE_BASIC,
    }[level]
    return ort.InferenceSession(str(path), so, providers=["CPUExecutionProvider"])


def image():
    rng = np.random.default_rng(3)
    # A smooth-ish synthetic image, normalised like SAM's preprocessing.
    y, x = np.mgrid[0:1024, 0:1024] / 1024.0
    img = np.stack([np.sin(6 * x + 1), np.cos(5 * y), np.sin(4 * (x + y))])
    img = img + 0.3 * rng.standard_normal(img.shape)
    return img[None].astype(np.float32)


def prompts(n):
    rng = np.random.default_rng(5)
    return rng.uniform(64, 960, (n, 2)).astype(np.float32)


def std_decode(s, emb, pt):
    coords = np.array([[pt, [0, 0]]], np.float32)
    labels = np.array([[1, -1]], np.float32)
    masks, iou, low = s.run(None, {
        "image_embeddings": emb, "point_coords": coords, "point_labels": labels,
        "mask_input": np.zeros((1, 1, 256, 256), np.float32),
        "has_mask_input": np.zeros(1, np.float32),
        "orig_im_size": np.array([256, 256], np.float32)})
    return low, iou


def fast_decode(s, emb, pts):
    coords = np.stack([np.stack([p, [0, 0]]) for p in pts]).astype(np.float32)
    labels = np.tile(np.array([[1, -1]], np.float32), (len(pts), 1))
    iou, low = s.run(["iou_predictions", "low_res_masks"], {
        "image_embeddings": emb, "point_coords": coords, "point_labels": labels,
        "mask_input": np.zeros((1, 1, 256, 256), np.float32),
        "has_mask_input": np.zeros(1, np.float32)})
    return low, iou


def iou(a, b):
    union = np.logical_or(a, b).sum()
    return 1.0 if union == 0 else np.logical_and(a, b).sum() / union


def median(v):
    return float(np.median(v))


def decoder_case(out, emb, results):
    s_std, s_fast = session(out / "decoder.onnx"), session(out / "decoder_fast.onnx")
    pts = prompts(32)
    # Parity: the same rows through both.
    low_f, iou_f = fast_decode(s_fast, emb, pts[:16])
    diffs = []
    for i, p in enumerate(pts[:16]):
        low_s, iou_s = std_decode(s_std, emb, p)
        diffs.append((float(np.abs(low_s[0] - low_f[i]).max()),
                      float(np.abs(iou_s[0] - iou_f[i]).max()),
                      float(((low_s[0] > 0) == (low_f[i] > 0)).mean())))
    t_std, t_f1, t_f16 = [], [], []
    for r in range(3):
        for p in pts[:8]:
            t = time.perf_counter(); std_decode(s_std, emb, p); t_std.append(time.perf_counter() - t)
            t = time.perf_counter(); fast_decode(s_fast, emb, [p]); t_f1.append(time.perf_counter() - t)
        t = time.perf_counter(); fast_decode(s_fast, emb, pts[16:32]); t_f16.append((time.perf_counter() - t) / 16)
    results["decoder"] = {
        "max_abs_low_res_diff": max(d[0] for d in diffs),
        "max_abs_iou_diff": max(d[1] for d in diffs),
        "min_sign_agreement": min(d[2] for d in diffs),
        "standard_ms_per_prompt": median(t_std) * 1e3,
        "fast_1_ms_per_prompt": median(t_f1) * 1e3,
        "fast_16_ms_per_prompt": median(t_f16) * 1e3,
    }


def int8_case(out, img, results):
    s32, s8 = session(out / "encoder.onnx"), session(out / "encoder.int8.onnx")
    t32, t8 = [], []
    for _ in range(2):
        t = time.perf_counter(); e32 = s32.run(None, {"image": img})[0]; t32.append(time.perf_counter() - t)
        t = time.perf_counter(); e8 = s8.run(None, {"image": img})[0]; t8.append(time.perf_counter() - t)
    dec = session(out / "decoder_fast.onnx")
    pts = prompts(16)
    l32, _ = fast_decode(dec, e32, pts)
    l8, _ = fast_decode(dec, e8, pts)
    ious = [iou(l32[i] > 0, l8[i] > 0) for i in range(len(pts))]
    results["int8"] = {
        "fp32_encoder_s": median(t32), "int8_encoder_s": median(t8),
        "speedup": median(t32) / median(t8),
        "mask_iou_median": float(np.median(ious)), "mask_iou_min": float(np.min(ious)),
        "embedding_rel_err": float(np.abs(e32 - e8).mean() / np.abs(e32).mean()),
        "size_mib": [os.path.getsize(out / "encoder.onnx") / 2**20,
                     os.path.getsize(out / "encoder.int8.onnx") / 2**20],
    }
    return e32


def fp16_case(out, emb, results):
    dec = session(out / "decoder_fast.onnx")
    pts = prompts(32)
    l32, s32 = fast_decode(dec, emb, pts)
    l16, s16 = fast_decode(dec, emb.astype(np.float16).astype(np.float32), pts)
    agree = [float(((l32[i] > 0) == (l16[i] > 0)).mean()) for i in range(len(pts))]
    ious = [iou(l32[i] > 0, l16[i] > 0) for i in range(len(pts))]
    results["fp16"] = {"pixel_agreement_min": min(agree), "mask_iou_min": float(min(ious)),
                       "mask_iou_median": float(np.median(ious)),
                       "max_abs_logit_diff": float(np.abs(l32 - l16).max()),
                       "max_abs_score_diff": float(np.abs(s32 - s16).max())}


CHILD = r"""
import sys, time, json, numpy as np
sys.path.insert(0, sys.argv[1])
import speed_means as m
opts = json.loads(sys.argv[3])
s = m.session(sys.argv[2], **opts)
img = m.image()
ts = []
for _ in range(int(opts.get("runs", 1))):
    t = time.perf_counter(); s.run(None, {"image": img}); ts.append(time.perf_counter() - t)
rss = hwm = 0
for line in open("/proc/self/status"):
    if line.startswith("VmHWM"): hwm = int(line.split()[1]) // 1024
    if line.startswith("VmRSS"): rss = int(line.split()[1]) // 1024
print(json.dumps({"s": min(ts), "vmhwm_mib": hwm, "vmrss_after_mib": rss}))
"""


def session_case(out, results):
    variants = [("default (arena on, pattern on, all)", {}),
                ("arena off", {"arena": False}),
                ("arena off, pattern off", {"arena": False, "pattern": False}),
                ("optimisation extended", {"level": "extended"}),
                ("optimisation basic", {"level": "basic"})]
    rows = []
    for name, opts in variants:
        r = subprocess.run([sys.executable, "-c", CHILD, str(ROOT / "bench"),
                            str(out / "encoder.onnx"), json.dumps(opts)],
                           capture_output=True, text=True, check=True)
        rows.append((name, json.loads(r.stdout.strip().splitlines()[-1])))
        print(name, rows[-1][1], flush=True)
    results["session"] = rows


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", type=Path, default=ROOT / "bench/out/speed")
    ap.add_argument("--skip", default="")
    a = ap.parse_args()
    skip = set(a.skip.split(","))
    print("load average before:", *load(), flush=True)
    build(a.out)
    results = {"load_before": load()}
    img = image()
    emb = session(a.out / "encoder.onnx").run(None, {"image": img})[0]
    if "decoder" not in skip:
        decoder_case(a.out, emb, results)
        print(json.dumps(results["decoder"]), flush=True)
    if "fp16" not in skip:
        fp16_case(a.out, emb, results)
        print(json.dumps(results["fp16"]), flush=True)
    if "int8" not in skip:
        int8_case(a.out, img, results)
        print(json.dumps(results["int8"]), flush=True)
    if "session" not in skip:
        session_case(a.out, results)
    results["load_after"] = load()
    print("load average after:", *load())
    (a.out / "results.json").write_text(json.dumps(results, indent=1))
    print(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
