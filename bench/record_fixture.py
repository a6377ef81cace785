#!/usr/bin/env python3
"""Records the parity fixture that `cargo test` checks the host's preprocessing and mask
upsampling against (host/src/models/parity_tests.rs), so that parity with the reference
predictors cannot regress where torch cannot run (CI). Run once, with the bench venv and models
(bash bench/setup.sh):

    bench/.venv/bin/python bench/record_fixture.py

Writes host/tests/fixtures/parity/ (~300 KB): manifest.json and gzip'd blobs:
- a small RGB image and what the references make of it: segment-anything's
  ResizeLongestSide (torchvision's resize of a PIL image: Pillow bilinear, uint8) to a larger
  and a smaller size, and SAM2Transforms
  (torchvision antialiased bilinear on floats, then ImageNet normalisation) likewise;
- for a 300x220 crop of RGB.byte.tif and a few prompts on the random-weight SAM ViT-B and SAM2
  hiera-tiny (bench/make_models.py): the chosen low-resolution logits (stored as float16) and the
  reference's final mask computed from exactly those float16 values (segment-anything's
  Sam.postprocess_masks / SAM2Transforms.postprocess_masks, threshold 0), bit-packed.
"""

import gzip
import json
import os
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parent.parent
MODELS = ROOT / "bench" / "out" / "models"
OUT = ROOT / "host" / "tests" / "fixtures" / "parity"
SAM2_CKPT = (MODELS / "hf" / "hub" / "models--facebook--sam2-hiera-tiny" / "snapshots" /
             ("0" * 39 + "1") / "sam2_hiera_tiny.pt")


def write(name: str, array: np.ndarray) -> str:
    (OUT / name).write_bytes(gzip.compress(np.ascontiguousarray(array).tobytes(), mtime=0))
    return name


def test_image(w=48, h=36):
    """Gradients, noise and hard edges: every resize path gets exercised."""
    rng = np.random.default_rng(11)
    y, x = np.mgrid[0:h, 0:w]
    img = np.stack([x * 255 / w, y * 255 / h, (x + y) % 32 * 8], axis=-1)
    img = img + rng.normal(0, 25, img.shape)
    img[h // 3: h // 2, w // 4: w // 2] = [250, 5, 128]
    return np.clip(img, 0, 255).astype(np.uint8)


def resize_cases(manifest):
    from segment_anything.utils.transforms import ResizeLongestSide
    from sam2.utils.transforms import SAM2Transforms

    img = test_image()
    manifest["image"] = dict(width=img.shape[1], height=img.shape[0], file=write("image.u8.gz", img))
    manifest["sam_resize"] = []
    for side in (128, 20, 37):
        out = ResizeLongestSide(side).apply_image(img)
        manifest["sam_resize"].append(dict(width=out.shape[1], height=out.shape[0],
                                           file=write(f"sam_resize_{side}.u8.gz", out)))
    manifest["sam2_input"] = []
    for side in (64, 24):
        t = SAM2Transforms(resolution=side, mask_threshold=0.0)(img)  # [3, side, side], normalised
        manifest["sam2_input"].append(dict(side=side, file=write(f"sam2_input_{side}.f32.gz",
                                                                 t.numpy().astype("<f4"))))


def crop_of_rgb_byte():
    import rasterio

    real = Path(os.environ.get("SAMGEO_REAL_DATA", "/work/shared/data/rasters"))
    with rasterio.open(real / "RGB.byte.tif") as d:
        data = d.read([1, 2, 3], window=((250, 470), (250, 550)))
    return np.ascontiguousarray(data.transpose(1, 2, 0))  # 220 x 300 x 3


def mask_case(manifest, family, low_res_f16, final, input_size, prompt, token):
    h, w = final.shape
    name = f"{family}_{len(manifest['masks'])}"
    manifest["masks"].append(dict(
        family=family, prompt=prompt, token=int(token), width=w, height=h,
        input_width=int(input_size[1]), input_height=int(input_size[0]),
        logits=write(f"{name}.logits.f16.gz", low_res_f16.astype("<f2")),
        mask=write(f"{name}.mask.bits.gz", np.packbits(final.reshape(-1))),
        area=int(final.sum()),
    ))
    print(f"  {name}: {prompt} token {token} area {int(final.sum())}", flush=True)


def sam_cases(manifest, img):
    from segment_anything import SamPredictor, sam_model_registry

    torch.manual_seed(0)
    sam = sam_model_registry["vit_b"](checkpoint=str(MODELS / "torch" / "sam_vit_b_01ec64.pth")).eval()
    p = SamPredictor(sam)
    p.set_image(img)
    # One prompt per family keeps the fixture small (each logit plane is ~115 KB): the
    # upsampling does not depend on the prompt kind.
    prompts = [
        ("point", dict(point_coords=np.array([[150.0, 100.0]]), point_labels=np.array([1])), False),
    ]
    for label, kw, multimask in prompts:
        _, _, low = p.predict(multimask_output=multimask, return_logits=True, **kw)
        # Single mask: token 0; multimask: tokens 1..3, keep token 2.
        token = 2 if multimask else 0
        f16 = (low[1] if multimask else low[0]).astype(np.float16)
        t = torch.from_numpy(f16.astype(np.float32))[None, None]
        with torch.no_grad():
            up = sam.postprocess_masks(t, p.input_size, p.original_size)[0, 0].numpy()
        mask_case(manifest, "sam", f16, up > sam.mask_threshold, p.input_size, label, token)


def sam2_cases(manifest, img):
    from sam2.build_sam import build_sam2
    from sam2.sam2_image_predictor import SAM2ImagePredictor

    model = build_sam2("configs/sam2/sam2_hiera_t.yaml", str(SAM2_CKPT), device="cpu", mode="eval")
    p = SAM2ImagePredictor(model)
    p.set_image(img)
    _, _, low = p.predict(point_coords=np.array([[150.0, 100.0]]), point_labels=np.array([1]),
                          multimask_output=False, return_logits=True)
    f16 = low[0].astype(np.float16)
    t = torch.from_numpy(f16.astype(np.float32))[None, None]
    with torch.no_grad():
        up = p._transforms.postprocess_masks(t, p._orig_hw[0])[0, 0].numpy()
    mask_case(manifest, "sam2", f16, up > p.mask_threshold, (1024, 1024), "point", -1)


def main():
    OUT.mkdir(parents=True, exist_ok=True)
    for f in OUT.iterdir():
        f.unlink()
    torch.set_num_threads(os.cpu_count() or 1)
    manifest = {"recorded_by": "bench/record_fixture.py", "masks": []}
    resize_cases(manifest)
    img = crop_of_rgb_byte()
    manifest["crop"] = dict(width=img.shape[1], height=img.shape[0])
    sam_cases(manifest, img)
    sam2_cases(manifest, img)
    (OUT / "manifest.json").write_text(json.dumps(manifest, indent=1) + "\n")
    total = sum(f.stat().st_size for f in OUT.iterdir())
    print(f"wrote {OUT} ({total / 1024:.0f} KiB)")


if __name__ == "__main__":
    main()
