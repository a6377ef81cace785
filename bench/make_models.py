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

The weights are random (no real weights can be downloaded here): the masks mean nothing, but
both servers run exactly the same network, so timings and pixel parity are comparable.
"""

import argparse
import os
import time
from pathlib import Path

import torch
from torch import nn

SEED = 20240917
SAM2_REVISION = "0" * 39 + "1"  # snapshot dir name in the fake HF cache


def export(module, args, path, input_names, output_names, dynamic_axes=None, opset=17):
    t = time.time()
    kwargs = dict(
        export_params=True,
        opset_version=opset,
        do_constant_folding=True,
        input_names=input_names,
        output_names=output_names,
        dynamic_axes=dynamic_axes,
    )
    try:
        torch.onnx.export(module, args, str(path), dynamo=False, **kwargs)
    except TypeError:  # torch without the dynamo switch
        torch.onnx.export(module, args, str(path), **kwargs)
    print(f"  {path.name}: {path.stat().st_size / 2**20:.1f} MiB in {time.time() - t:.1f}s", flush=True)


class SamEncoder(nn.Module):
    """SAM's image encoder alone: normalised, padded [1,3,1024,1024] -> [1,256,64,64]."""

    def __init__(self, sam):
        super().__init__()
        self.encoder = sam.image_encoder

    def forward(self, image):
        return self.encoder(image)


def build_sam(out: Path):
    from segment_anything import sam_model_registry
    from segment_anything.utils.onnx import SamOnnxModel

    torch.manual_seed(SEED)
    sam = sam_model_registry["vit_b"](checkpoint=None).eval()
    ckpt = out / "torch" / "sam_vit_b_01ec64.pth"
    ckpt.parent.mkdir(parents=True, exist_ok=True)
    torch.save(sam.state_dict(), ckpt)
    print(f"SAM vit_b checkpoint: {ckpt} ({ckpt.stat().st_size / 2**20:.1f} MiB)", flush=True)

    onnx_dir = out / "onnx"
    onnx_dir.mkdir(parents=True, exist_ok=True)
    with torch.no_grad():
        export(
            SamEncoder(sam),
            (torch.randn(1, 3, 1024, 1024),),
            onnx_dir / "sam_vit_b_encoder.onnx",
            ["image"],
            ["image_embeddings"],
        )
        # As segment-anything's scripts/export_onnx_model.py, without --return-single-mask.
        decoder = SamOnnxModel(sam, return_single_mask=False)
        embed_size = sam.prompt_encoder.image_embedding_size
        dummy = (
            torch.randn(1, 256, *embed_size),
            torch.randint(0, 1024, (1, 5, 2), dtype=torch.float),
            torch.randint(0, 4, (1, 5), dtype=torch.float),
            torch.randn(1, 1, 256, 256),
            torch.tensor([1], dtype=torch.float),
            torch.tensor([1500, 2250], dtype=torch.float),
        )
        export(
            decoder,
            dummy,
            onnx_dir / "sam_vit_b_decoder.onnx",
            ["image_embeddings", "point_coords", "point_labels", "mask_input", "has_mask_input", "orig_im_size"],
            ["masks", "iou_predictions", "low_res_masks"],
            dynamic_axes={"point_coords": {1: "num_points"}, "point_labels": {1: "num_points"}},
        )


class Sam2Encoder(nn.Module):
    """What SAM2ImagePredictor.set_image computes, as one graph."""

    def __init__(self, model):
        super().__init__()
        self.model = model

    def forward(self, image):
        m = self.model
        out = m.image_encoder(image)
        fpn = list(out["backbone_fpn"])
        # forward_image applies the decoder's high-resolution projections.
        fpn[0] = m.sam_mask_decoder.conv_s0(fpn[0])
        fpn[1] = m.sam_mask_decoder.conv_s1(fpn[1])
        levels = fpn[-m.num_feature_levels:]
        high0, high1, embed = levels[0], levels[1], levels[2]
        # no_mem_embed is added to the lowest-resolution level (directly_add_no_mem_embed).
        embed = embed + m.no_mem_embed.reshape(1, -1, 1, 1)
        return high0, high1, embed


class Sam2Decoder(nn.Module):
    """Prompt encoder + mask decoder over L prompt rows; the three multimask outputs."""

    def __init__(self, model):
        super().__init__()
        self.model = model
        self.pe = model.sam_prompt_encoder
        self.dec = model.sam_mask_decoder

    def forward(self, image_embed, high_res_feats_0, high_res_feats_1, point_coords, point_labels,
                mask_input, has_mask_input):
        pe = self.pe
        # As PromptEncoder._embed_points(pad=True): +0.5 pixel centre, a padding point.
        coords = torch.cat([point_coords + 0.5, torch.zeros_like(point_coords[:, :1, :])], dim=1)
        labels = torch.cat([point_labels, -torch.ones_like(point_labels[:, :1])], dim=1)
        coords = coords / self.model.image_size
        emb = pe.pe_layer._pe_encoding(coords)
        lab = labels.unsqueeze(-1)
        emb = emb * (lab != -1).to(emb.dtype) + pe.not_a_point_embed.weight * (lab == -1).to(emb.dtype)
        for i in range(pe.num_point_embeddings):
            emb = emb + pe.point_embeddings[i].weight * (lab == i).to(emb.dtype)
        has = has_mask_input.reshape(-1, 1, 1, 1)
        dense = has * pe.mask_downscaling(mask_input) + (1 - has) * pe.no_mask_embed.weight.reshape(1, -1, 1, 1)
        masks, iou, _, _ = self.dec.predict_masks(
            image_embeddings=image_embed,
            image_pe=pe.get_dense_pe(),
            sparse_prompt_embeddings=emb,
            dense_prompt_embeddings=dense,
            # The [1,...] image features broadcast over the L rows (as samexporter exports it).
            repeat_image=False,
            high_res_features=[high_res_feats_0, high_res_feats_1],
        )
        return torch.clamp(masks[:, 1:], -32.0, 32.0), iou[:, 1:]


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
    with torch.no_grad():
        enc = Sam2Encoder(model).eval()
        img = torch.randn(1, 3, 1024, 1024)
        export(enc, (img,), onnx_dir / "sam2_hiera_tiny.encoder.onnx", ["image"],
               ["high_res_feats_0", "high_res_feats_1", "image_embed"])
        h0, h1, emb = enc(img)
        dec = Sam2Decoder(model).eval()
        dummy = (emb, h0, h1, torch.randint(0, 1024, (1, 5, 2), dtype=torch.float),
                 torch.randint(0, 2, (1, 5), dtype=torch.float), torch.randn(1, 1, 256, 256),
                 torch.tensor([1.0]))
        export(dec, dummy, onnx_dir / "sam2_hiera_tiny.decoder.onnx",
               ["image_embed", "high_res_feats_0", "high_res_feats_1", "point_coords", "point_labels",
                "mask_input", "has_mask_input"],
               ["masks", "iou_predictions"],
               dynamic_axes={"point_coords": {0: "num_labels", 1: "num_points"},
                             "point_labels": {0: "num_labels", 1: "num_points"},
                             "mask_input": {0: "num_labels"}, "has_mask_input": {0: "num_labels"}})


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default="bench/out/models")
    ap.add_argument("--only", choices=["sam", "sam2"], default=None)
    a = ap.parse_args()
    out = Path(a.out)
    torch.set_num_threads(os.cpu_count() or 1)
    if a.only in (None, "sam"):
        build_sam(out)
    if a.only in (None, "sam2"):
        build_sam2(out)
    if a.only is None:
        (out / ".done").write_text("ok\n")


if __name__ == "__main__":
    main()
