#!/usr/bin/env python3
"""Exports official SAM / SAM2 checkpoints to the ONNX files samgeo-rs loads, and writes a
samgeo.toml fragment naming them. Run through `scripts/export-models` (it creates the Python
environment with torch, segment-anything and sam2 on first use).

  --family sam   sam_vit_{h,l,b}_*.pth         -> encoder.onnx  image [1,3,1024,1024] -> image_embeddings
                                                 decoder.onnx  segment-anything's SamOnnxModel
                                                               (return_single_mask=False: all 4 masks)
                                                 --decoder fast: decoder.onnx ends at low_res_masks
                                                               [L,4,256,256] + iou_predictions [L,4]
                                                               for L prompt rows, no orig_im_size
                                                               (the server upsamples what it keeps)
  --family sam2  sam2{,.1}_hiera_{t,s,b+,l}.pt -> encoder.onnx  image -> high_res_feats_0, high_res_feats_1, image_embed
                                                 decoder.onnx  prompt rows -> masks [L,4,256,256],
                                                               iou_predictions [L,4] (all 4 mask tokens,
                                                               so the server can choose as
                                                               SAM2ImagePredictor does)

--quantize int8 also writes encoder.int8.onnx (onnxruntime's dynamic quantization: int8 weights,
activations quantized per call) and names it in the fragment; the fp32 files stay.

The same classes serve bench/make_models.py (random weights), so the benchmark measures what
this exporter writes.
"""

import argparse
import re
import sys
import time
from pathlib import Path

import torch
from torch import nn

# Official checkpoint names → (model id in samgeo.toml, sam2 config).
SAM2_SIZES = {"t": "tiny", "tiny": "tiny", "s": "small", "small": "small", "b+": "base-plus",
              "base_plus": "base-plus", "l": "large", "large": "large"}
KNOWN_IDS = {"sam": ["vit_h", "vit_l", "vit_b"],
             "sam2": ["sam2-hiera-tiny", "sam2-hiera-small", "sam2-hiera-base-plus",
                      "sam2-hiera-large"]}
SAM2_CONFIG_SIZE = {"tiny": "t", "small": "s", "base-plus": "b+", "large": "l"}
SAM3_NOTE = (
    "--family sam3 is not supported: the `sam3` package on PyPI (0.1.x) builds the PyTorch model "
    "(sam3.model_builder.build_sam3_image_model) but ships no ONNX export, and the three graphs "
    "samgeo-rs loads for SAM3 (image encoder, language encoder, decoder with their tensor names) "
    "follow samexporter's export_sam3.py, which has to trace SAM3's detector and tracker heads "
    "separately. Use samexporter (`python -m samexporter.export_sam3`) for SAM3."
)


def export(module, args, path, input_names, output_names, dynamic_axes=None, opset=17):
    """torch.onnx.export with the TorchScript exporter (the dynamo one does not trace SAM's
    control flow), printing size and time."""
    t = time.time()
    kwargs = dict(export_params=True, opset_version=opset, do_constant_folding=True,
                  input_names=input_names, output_names=output_names, dynamic_axes=dynamic_axes)
    try:
        torch.onnx.export(module, args, str(path), dynamo=False, **kwargs)
    except TypeError:  # torch without the dynamo switch
        torch.onnx.export(module, args, str(path), **kwargs)
    print(f"  {path}: {path.stat().st_size / 2**20:.1f} MiB in {time.time() - t:.1f}s", flush=True)


# ---------------------------------------------------------------------------------------------
# SAM


class SamEncoder(nn.Module):
    """SAM's image encoder alone: normalised, padded [1,3,1024,1024] -> [1,256,64,64]."""

    def __init__(self, sam):
        super().__init__()
        self.encoder = sam.image_encoder

    def forward(self, image):
        return self.encoder(image)


def sam_fast_decoder(sam):
    """SamOnnxModel without the work the server does not use: it returns the low-resolution
    logits of all four mask tokens and their scores for a batch of L prompt rows against one
    embedding (no upsampling to 1024² and to `orig_im_size`, no `orig_im_size` input)."""
    from segment_anything.utils.onnx import SamOnnxModel

    class SamFastDecoder(SamOnnxModel):
        def forward(self, image_embeddings, point_coords, point_labels, mask_input,
                    has_mask_input):
            sparse = self._embed_points(point_coords, point_labels)
            dense = self._embed_masks(mask_input, has_mask_input)
            masks, scores = self.model.mask_decoder.predict_masks(
                image_embeddings=image_embeddings,
                image_pe=self.model.prompt_encoder.get_dense_pe(),
                sparse_prompt_embeddings=sparse,
                dense_prompt_embeddings=dense,
            )
            return scores, masks

    return SamFastDecoder(sam, return_single_mask=False).eval()


def export_sam_fast_decoder(sam, decoder_path: Path):
    """Writes the fast decoder (see `sam_fast_decoder`); traced with 2 rows so that the batch
    axis stays symbolic."""
    with torch.no_grad():
        embed_size = sam.prompt_encoder.image_embedding_size
        dummy = (
            torch.randn(1, 256, *embed_size),
            torch.randint(0, 1024, (2, 5, 2), dtype=torch.float),
            torch.randint(0, 4, (2, 5), dtype=torch.float),
            torch.randn(1, 1, 256, 256),
            torch.tensor([1], dtype=torch.float),
        )
        export(sam_fast_decoder(sam), dummy, decoder_path,
               ["image_embeddings", "point_coords", "point_labels", "mask_input",
                "has_mask_input"],
               ["iou_predictions", "low_res_masks"],
               dynamic_axes={"point_coords": {0: "num_prompts", 1: "num_points"},
                             "point_labels": {0: "num_prompts", 1: "num_points"},
                             "iou_predictions": {0: "num_prompts"},
                             "low_res_masks": {0: "num_prompts"}})


def quantize_int8(model_path: Path) -> Path:
    """onnxruntime's dynamic int8 quantization of `model_path` into `<stem>.int8.onnx`."""
    from onnxruntime.quantization import QuantType, quantize_dynamic

    out = model_path.with_name(model_path.stem + ".int8.onnx")
    t = time.time()
    quantize_dynamic(str(model_path), str(out), weight_type=QuantType.QInt8)
    print(f"  {out}: {out.stat().st_size / 2**20:.1f} MiB in {time.time() - t:.1f}s", flush=True)
    return out


def export_sam(sam, encoder_path: Path, decoder_path: Path, decoder_kind: str = "standard"):
    """Writes SAM's encoder and the official decoder export (all four masks), or the fast
    decoder with `decoder_kind="fast"`. `encoder_path=None` skips the encoder."""
    from segment_anything.utils.onnx import SamOnnxModel

    if decoder_kind == "fast":
        if encoder_path is not None:
            with torch.no_grad():
                export(SamEncoder(sam), (torch.randn(1, 3, 1024, 1024),), encoder_path,
                       ["image"], ["image_embeddings"])
        export_sam_fast_decoder(sam, decoder_path)
        return
    with torch.no_grad():
        if encoder_path is not None:
            export(SamEncoder(sam), (torch.randn(1, 3, 1024, 1024),), encoder_path, ["image"],
                   ["image_embeddings"])
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
        export(decoder, dummy, decoder_path,
               ["image_embeddings", "point_coords", "point_labels", "mask_input", "has_mask_input",
                "orig_im_size"],
               ["masks", "iou_predictions", "low_res_masks"],
               dynamic_axes={"point_coords": {1: "num_points"}, "point_labels": {1: "num_points"}})


def load_sam(checkpoint: Path, model_id: str):
    from segment_anything import sam_model_registry

    return sam_model_registry[model_id](checkpoint=str(checkpoint)).eval()


# ---------------------------------------------------------------------------------------------
# SAM2


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
    """Prompt encoder + mask decoder over L prompt rows (samexporter's input signature).

    Adds the one not-a-point padding token SAM2's prompt encoder adds (SAM2ImagePredictor
    passes boxes as points, so it always pads). `first_token=0` returns all four mask tokens
    (ours: the server picks as SAM2ImagePredictor does); `first_token=1` returns the three
    multimask tokens, clamped to ±32, as samexporter's export does.
    """

    def __init__(self, model, first_token=0):
        super().__init__()
        self.model = model
        self.pe = model.sam_prompt_encoder
        self.dec = model.sam_mask_decoder
        self.first_token = first_token

    def forward(self, image_embed, high_res_feats_0, high_res_feats_1, point_coords, point_labels,
                mask_input, has_mask_input):
        pe = self.pe
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
            # The [1,...] image features broadcast over the L rows.
            repeat_image=False,
            high_res_features=[high_res_feats_0, high_res_feats_1],
        )
        if self.first_token == 0:
            return masks, iou
        return torch.clamp(masks[:, 1:], -32.0, 32.0), iou[:, 1:]


def export_sam2(model, encoder_path: Path, decoder_path: Path, first_token=0):
    """Writes SAM2's encoder (when `encoder_path` is set) and decoder."""
    with torch.no_grad():
        enc = Sam2Encoder(model).eval()
        img = torch.randn(1, 3, 1024, 1024)
        if encoder_path is not None:
            export(enc, (img,), encoder_path, ["image"],
                   ["high_res_feats_0", "high_res_feats_1", "image_embed"])
        h0, h1, emb = enc(img)
        dec = Sam2Decoder(model, first_token).eval()
        dummy = (emb, h0, h1, torch.randint(0, 1024, (1, 5, 2), dtype=torch.float),
                 torch.randint(0, 2, (1, 5), dtype=torch.float), torch.randn(1, 1, 256, 256),
                 torch.tensor([1.0]))
        export(dec, dummy, decoder_path,
               ["image_embed", "high_res_feats_0", "high_res_feats_1", "point_coords", "point_labels",
                "mask_input", "has_mask_input"],
               ["masks", "iou_predictions"],
               dynamic_axes={"point_coords": {0: "num_labels", 1: "num_points"},
                             "point_labels": {0: "num_labels", 1: "num_points"},
                             "mask_input": {0: "num_labels"}, "has_mask_input": {0: "num_labels"}})


def sam2_config(checkpoint_name: str, model_id: str) -> str:
    """The sam2 package's config for a checkpoint: SAM2.1 files use the sam2.1 configs."""
    size = SAM2_CONFIG_SIZE[model_id.removeprefix("sam2-hiera-")]
    if checkpoint_name.startswith("sam2.1"):
        return f"configs/sam2.1/sam2.1_hiera_{size}.yaml"
    return f"configs/sam2/sam2_hiera_{size}.yaml"


def load_sam2(checkpoint: Path, model_id: str):
    from sam2.build_sam import build_sam2

    return build_sam2(sam2_config(checkpoint.name, model_id), str(checkpoint), device="cpu",
                      mode="eval")


# ---------------------------------------------------------------------------------------------
# ids and the config fragment


def infer_model_id(family: str, checkpoint_name: str):
    """The samgeo.toml id for an official checkpoint file name, or None."""
    name = checkpoint_name.lower()
    if family == "sam":
        m = re.search(r"vit_([hlb])", name)
        return f"vit_{m.group(1)}" if m else None
    if family == "sam2":
        m = re.search(r"hiera_(base_plus|b\+|tiny|small|large|[tsl])(?![a-z])", name)
        return f"sam2-hiera-{SAM2_SIZES[m.group(1)]}" if m else None
    return None


def toml_fragment(family: str, model_id: str, encoder: Path, decoder: Path, source: Path) -> str:
    return (
        f"# Written by scripts/export-models from {source.name}.\n"
        f'[models.{family}."{model_id}"]\n'
        f'encoder = "{encoder.resolve()}"\n'
        f'decoder = "{decoder.resolve()}"\n'
    )


def export_checkpoint(family: str, checkpoint: Path, out: Path, model_id=None,
                      decoder_kind: str = "standard", quantize: str = "none") -> Path:
    """Exports `checkpoint` into `out` (encoder.onnx, decoder.onnx, samgeo.toml); returns the
    fragment's path."""
    if decoder_kind == "fast" and family != "sam":
        raise SystemExit("--decoder fast is for --family sam (the SAM2 export already takes "
                         "prompt rows in batches and has no in-graph upsampling)")
    model_id = model_id or infer_model_id(family, checkpoint.name)
    if model_id is None:
        raise SystemExit(f"cannot tell the model id from '{checkpoint.name}': pass --model-id")
    known = KNOWN_IDS[family]
    if model_id not in known:
        raise SystemExit(f"unknown {family} model id '{model_id}' (known: {', '.join(known)})")
    out.mkdir(parents=True, exist_ok=True)
    encoder, decoder = out / "encoder.onnx", out / "decoder.onnx"
    t = time.time()
    print(f"{family} {model_id}: loading {checkpoint}", flush=True)
    if family == "sam":
        export_sam(load_sam(checkpoint, model_id), encoder, decoder, decoder_kind)
    else:
        export_sam2(load_sam2(checkpoint, model_id), encoder, decoder)
    if quantize == "int8":
        encoder = quantize_int8(encoder)
    fragment = out / "samgeo.toml"
    fragment.write_text(toml_fragment(family, model_id, encoder, decoder, checkpoint))
    print(f"wrote {fragment} in {time.time() - t:.0f}s", flush=True)
    return fragment


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--family", required=True, choices=["sam", "sam2", "sam3"])
    ap.add_argument("--checkpoint", type=Path, required=True)
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--model-id", default=None,
                    help="id under [models.<family>] (default: from the checkpoint's file name)")
    ap.add_argument("--decoder", choices=["standard", "fast"], default="standard",
                    help="fast (SAM): a decoder ending at low_res_masks + iou_predictions that "
                         "takes a batch of prompt rows; the server upsamples what it keeps")
    ap.add_argument("--quantize", choices=["none", "int8"], default="none",
                    help="int8: also write encoder.int8.onnx (dynamic quantization) and name it "
                         "in samgeo.toml")
    a = ap.parse_args()
    if a.family == "sam3":
        print(SAM3_NOTE, file=sys.stderr)
        return 2
    if not a.checkpoint.is_file():
        print(f"checkpoint {a.checkpoint} does not exist", file=sys.stderr)
        return 2
    fragment = export_checkpoint(a.family, a.checkpoint, a.out, a.model_id, a.decoder,
                                 a.quantize)
    print(f"add to samgeo.toml:  include = [\"{fragment.resolve()}\"]  (or append the file)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
