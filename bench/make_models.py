#!/usr/bin/env python3
"""Builds random-weight SAM ViT-B and SAM2 hiera-tiny models (fixed seed), saves the torch
checkpoints where the seed's server (segment-geospatial `samgeo-api`) looks for them, and
exports the SAME weights to ONNX with the tensor signatures samgeo-rs expects.

Layout under --out (default bench/out/models):
  torch/sam_vit_b_01ec64.pth                     TORCH_HOME for the seed (samgeo.common.download_checkpoint
                                                 looks at $TORCH_HOME/<name> directly)
  hf/hub/models--facebook--sam2-hiera-tiny/...   HF_HOME for the seed (SAM2 via hf_hub_download,
                                                 used with HF_HUB_OFFLINE=1)
  onnx/sam_vit_b_encoder.onnx                    image [1,3,1024,1024] -> image_embeddings
  onnx/sam_vit_b_decoder.onnx                    segment-anything's SamOnnxModel, return_single_mask=False
  onnx/sam2_hiera_tiny.encoder.onnx              image -> high_res_feats_0, high_res_feats_1, image_embed
  onnx/sam2_hiera_tiny.decoder.onnx              batched prompts -> masks [L,3,256,256], iou_predictions [L,3]
                                                 (samexporter's layout)
  export/vit_b/, export/sam2-hiera-tiny/         scripts/export-models run on the checkpoints above:
                                                 encoder.onnx, decoder.onnx (SAM2: all 4 mask tokens),
                                                 samgeo.toml

The weights are random (no real weights can be downloaded here): the masks mean nothing, but
both servers run exactly the same network, so timings and pixel parity are comparable.
"""

import argparse
import os
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "scripts"))
from export_models import export_checkpoint, export_sam, export_sam2  # noqa: E402

SEED = 20240917
SAM2_REVISION = "0" * 39 + "1"  # snapshot dir name in the fake HF cache


def build_sam(out: Path):
    from segment_anything import sam_model_registry

    torch.manual_seed(SEED)
    sam = sam_model_registry["vit_b"](checkpoint=None).eval()
    ckpt = out / "torch" / "sam_vit_b_01ec64.pth"
    ckpt.parent.mkdir(parents=True, exist_ok=True)
    torch.save(sam.state_dict(), ckpt)
    print(f"SAM vit_b checkpoint: {ckpt} ({ckpt.stat().st_size / 2**20:.1f} MiB)", flush=True)

    onnx_dir = out / "onnx"
    onnx_dir.mkdir(parents=True, exist_ok=True)
    export_sam(sam, onnx_dir / "sam_vit_b_encoder.onnx", onnx_dir / "sam_vit_b_decoder.onnx")
    # The exporter users run, from the saved checkpoint: export/vit_b/{encoder,decoder}.onnx
    # and samgeo.toml (the bench's config includes export/*/samgeo.toml).
    export_checkpoint("sam", ckpt, out / "export" / "vit_b")


def build_sam2(out: Path):
    from sam2.build_sam import build_sam2 as build, HF_MODEL_ID_TO_FILENAMES

    config, ckpt_name = HF_MODEL_ID_TO_FILENAMES["facebook/sam2-hiera-tiny"]
    torch.manual_seed(SEED)
    model = build(config, ckpt_path=None, device="cpu", mode="eval")
    repo = out / "hf" / "hub" / "models--facebook--sam2-hiera-tiny"
    snap = repo / "snapshots" / SAM2_REVISION
    snap.mkdir(parents=True, exist_ok=True)
    (repo / "refs").mkdir(exist_ok=True)
    (repo / "refs" / "main").write_text(SAM2_REVISION)
    ckpt = snap / ckpt_name
    torch.save({"model": model.state_dict()}, ckpt)
    print(f"SAM2 hiera-tiny checkpoint: {ckpt} ({ckpt.stat().st_size / 2**20:.1f} MiB)", flush=True)

    onnx_dir = out / "onnx"
    onnx_dir.mkdir(parents=True, exist_ok=True)
    # samexporter's layout (3 multimask tokens): what the server accepted before it could
    # follow SAM2ImagePredictor; kept to measure and test that path.
    export_sam2(model, onnx_dir / "sam2_hiera_tiny.encoder.onnx",
                onnx_dir / "sam2_hiera_tiny.decoder.onnx", first_token=1)
    # The exporter users run (all 4 mask tokens), from the saved checkpoint.
    export_checkpoint("sam2", ckpt, out / "export" / "sam2-hiera-tiny")


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default="bench/out/models")
    ap.add_argument("--only", choices=["sam", "sam2"], default=None)
    ap.add_argument("--export-only", action="store_true",
                    help="only run the exporter on the saved checkpoints (export/*)")
    a = ap.parse_args()
    out = Path(a.out)
    torch.set_num_threads(os.cpu_count() or 1)
    if a.export_only:
        export_checkpoint("sam", out / "torch" / "sam_vit_b_01ec64.pth", out / "export" / "vit_b")
        snap = out / "hf" / "hub" / "models--facebook--sam2-hiera-tiny" / "snapshots" / SAM2_REVISION
        export_checkpoint("sam2", snap / "sam2_hiera_tiny.pt", out / "export" / "sam2-hiera-tiny")
        return
    if a.only in (None, "sam"):
        build_sam(out)
    if a.only in (None, "sam2"):
        build_sam2(out)
    if a.only is None:
        (out / ".done").write_text("ok\n")


if __name__ == "__main__":
    main()
