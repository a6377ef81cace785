#!/usr/bin/env python3
"""Where a SAM decoder call's time goes, on the bench's random-weight ViT-B: ONNX Runtime
(official export, one prompt row per call) with the full-size and a small `orig_im_size`, and
torch's mask decoder one prompt at a time vs 64 prompts per call (as SamAutomaticMaskGenerator
batches). Run with the bench venv after bench/make_models.py. Prints medians."""
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import onnxruntime as ort
import torch

M = Path(__file__).resolve().parent / "out" / "models"
threads = int(sys.argv[1]) if len(sys.argv) > 1 else 2


def med(fn, n=15):
    fn()
    ts = []
    for _ in range(n):
        t = time.perf_counter()
        fn()
        ts.append(time.perf_counter() - t)
    return statistics.median(ts) * 1000


so = ort.SessionOptions()
so.intra_op_num_threads = threads
so.inter_op_num_threads = 1
dec = ort.InferenceSession(str(M / "onnx/sam_vit_b_decoder.onnx"), so, providers=["CPUExecutionProvider"])
emb = np.random.default_rng(0).standard_normal((1, 256, 64, 64)).astype(np.float32)
feeds = dict(image_embeddings=emb, point_coords=np.array([[[400, 300], [0, 0]]], np.float32),
             point_labels=np.array([[1, -1]], np.float32), mask_input=np.zeros((1, 1, 256, 256), np.float32),
             has_mask_input=np.zeros(1, np.float32))
full = med(lambda: dec.run(None, dict(feeds, orig_im_size=np.array([718, 791], np.float32))))
small = med(lambda: dec.run(None, dict(feeds, orig_im_size=np.array([232, 256], np.float32))))
only_low = med(lambda: dec.run(["iou_predictions", "low_res_masks"], dict(feeds, orig_im_size=np.array([232, 256], np.float32))))
print(f"ORT decoder, 1 prompt, {threads} threads: orig_im_size 718x791 {full:.1f} ms; 232x256 (as the host) {small:.1f} ms; "
      f"fetching only low_res_masks+iou {only_low:.1f} ms")

from segment_anything import sam_model_registry

torch.set_num_threads(threads)
sam = sam_model_registry["vit_b"](checkpoint=str(M / "torch/sam_vit_b_01ec64.pth")).eval()
e = torch.from_numpy(emb)
pe = sam.prompt_encoder.get_dense_pe()


def torch_decode(b):
    pts = torch.tensor([[[400.0, 300.0]]]).repeat(b, 1, 1)
    lab = torch.ones(b, 1)
    with torch.inference_mode():
        sp, de = sam.prompt_encoder(points=(pts, lab), boxes=None, masks=None)
        sam.mask_decoder(image_embeddings=e, image_pe=pe, sparse_prompt_embeddings=sp,
                         dense_prompt_embeddings=de, multimask_output=True)


t1 = med(lambda: torch_decode(1))
t64 = med(lambda: torch_decode(64), n=5)
print(f"torch mask decoder, {threads} threads: 1 prompt {t1:.1f} ms; 64 prompts {t64:.1f} ms "
      f"({t64 / 64:.1f} ms per prompt)")
