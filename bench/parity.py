#!/usr/bin/env python3
"""Mask parity, side by side in one run: samgeo-rs servers (e.g. a build before and after a
change) against the reference predictors run directly on the same random weights
(segment-anything's SamPredictor / SamAutomaticMaskGenerator, sam2's SAM2ImagePredictor), and
optionally the seed's server (segment-geospatial samgeo-api) on what it does faithfully (SAM and
SAM2 point prompts). Needs bash bench/setup.sh (venv + models) and built plugins.

    bench/.venv/bin/python bench/parity.py --server after=target/debug/samgeo-api \\
        [--server before=/path/to/old/samgeo-api:legacy] [--seed] [--auto]

A server is NAME=BINARY[:legacy]; `legacy` runs it on the bench's first ONNX files
(bench/out/models/onnx: SAM official decoder, SAM2 samexporter-style 3-token decoder), otherwise
on what scripts/export-models wrote (bench/out/models/export/*/samgeo.toml, through `include`).
Masks are compared as geotiff label rasters (value > 0), per prompt: IoU against the reference.
Results: bench/out/parity/results.md and raw.json.
"""

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import run as bench  # noqa: E402  (Server, post, check, read_mask_tiff, start_seed)

ROOT, MODELS = bench.ROOT, bench.MODELS
OUT = bench.OUT / "parity"
SAM2_CKPT = (MODELS / "hf" / "hub" / "models--facebook--sam2-hiera-tiny" / "snapshots" /
             ("0" * 39 + "1") / "sam2_hiera_tiny.pt")
SAM, SAM2 = ("sam", "vit_b"), ("sam2", "sam2-hiera-tiny")

# (case, prompt fields): points as [x, y] pixels of RGB.byte.tif (791 x 718).
POINTS = [[158, 272], [451, 437], [270, 171], [563, 335], [382, 500], [640, 600]]
MULTI = [([[300, 300], [420, 380]], [1, 1]), ([[200, 250], [260, 300], [500, 420]], [1, 1, 0])]
BOXES = [[250, 250, 450, 420], [100, 120, 380, 330], [480, 380, 700, 650]]


def prompts():
    out = []
    for p in POINTS:
        out.append(("points (one)", dict(point_coords=[p], point_labels=[1])))
    for pts, labels in MULTI:
        out.append(("points (several)", dict(point_coords=pts, point_labels=labels)))
    for b in BOXES:
        out.append(("box", dict(boxes=[b])))
    for p in POINTS[:3]:
        out.append(("points, multimask", dict(point_coords=[p], point_labels=[1], multimask=True)))
    return out


def iou(a, b):
    union = np.logical_or(a, b).sum()
    return 1.0 if union == 0 else float(np.logical_and(a, b).sum() / union)


# ---------------------------------------------------------------------------------------------
# references


def read_rgb(path: Path):
    import rasterio

    with rasterio.open(path) as d:
        return np.ascontiguousarray(d.read([1, 2, 3]).transpose(1, 2, 0))


class Reference:
    """One predictor with the image set; `masks(prompt)` → (best or only mask, all candidates)."""

    def __init__(self, family, img):
        import torch

        torch.set_num_threads(int(os.environ.get("OMP_NUM_THREADS", "2")))
        t = time.time()
        if family == "sam":
            from segment_anything import SamPredictor, sam_model_registry

            model = sam_model_registry["vit_b"](
                checkpoint=str(MODELS / "torch" / "sam_vit_b_01ec64.pth")).eval()
            self.model, self.predictor = model, SamPredictor(model)
        else:
            from sam2.build_sam import build_sam2
            from sam2.sam2_image_predictor import SAM2ImagePredictor

            model = build_sam2("configs/sam2/sam2_hiera_t.yaml", str(SAM2_CKPT), device="cpu",
                               mode="eval")
            self.model, self.predictor = model, SAM2ImagePredictor(model)
        self.predictor.set_image(img)
        print(f"reference {family}: image set in {time.time() - t:.1f}s", flush=True)

    def masks(self, prompt):
        kw = dict(multimask_output=bool(prompt.get("multimask")))
        if "point_coords" in prompt:
            kw.update(point_coords=np.array(prompt["point_coords"], dtype=float),
                      point_labels=np.array(prompt["point_labels"]))
        if "boxes" in prompt:
            kw["box"] = np.array(prompt["boxes"][0], dtype=float)
        masks, scores, _ = self.predictor.predict(**kw)
        masks = masks.astype(bool)
        return masks[int(np.argmax(scores))], list(masks)


# ---------------------------------------------------------------------------------------------
# servers


def write_config(name, legacy, port):
    plugins = os.environ.get("SAMGEO_PLUGIN_DIR") or str(
        Path(os.environ.get("CARGO_TARGET_DIR", ROOT / "target")) / "plugins" / "dist")
    import onnxruntime
    ort = os.environ.get("ORT_DYLIB_PATH") or str(
        Path(onnxruntime.__file__).parent / "capi" / "libonnxruntime.so.1.31.1")
    onnx = MODELS / "onnx"
    if legacy:
        models = f"""
[models.sam.vit_b]
encoder = "{onnx / 'sam_vit_b_encoder.onnx'}"
decoder = "{onnx / 'sam_vit_b_decoder.onnx'}"

[models.sam2."sam2-hiera-tiny"]
encoder = "{onnx / 'sam2_hiera_tiny.encoder.onnx'}"
decoder = "{onnx / 'sam2_hiera_tiny.decoder.onnx'}"
"""
        include = ""
    else:
        models = ""
        include = f'include = ["{MODELS / "export"}/*/samgeo.toml"]\n'
    cfg = OUT / f"samgeo-{name}.toml"
    cfg.write_text(f"""# written by bench/parity.py
{include}
[server]
host = "127.0.0.1"
port = {port}
request_timeout_secs = 1800
cache_dir = "{OUT / ('cache-' + name)}"

[runtime]
onnxruntime_library = "{ort}"
execution_providers = ["cpu"]
intra_threads = 2

[plugins]
directory = "{plugins}"
{models}""")
    return cfg


def start_server(name, spec, port):
    binary, _, flag = spec.partition(":")
    cfg = write_config(name, flag == "legacy", port)
    env = dict(os.environ, OMP_NUM_THREADS="2")
    return bench.Server(name, [binary, "--config", str(cfg)], env, port, OUT / f"{name}.log")


def server_mask(srv, model, img_path, prompt):
    fields = dict(model_version=model[0], model_id=model[1], output_format="geotiff")
    for k in ("point_coords", "point_labels", "boxes"):
        if k in prompt:
            fields[k] = json.dumps(prompt[k])
    if prompt.get("multimask"):
        fields["multimask_output"] = "true"
    r, _ = bench.post(srv, "/segment/predict", img_path, fields)
    bench.check(r, f"{srv.name} {prompt}")
    return bench.read_mask_tiff(r.content) > 0, int(r.headers.get("X-Samgeo-Masks", "1"))


# ---------------------------------------------------------------------------------------------
# automatic


def reference_automatic(family, ref, img, pps):
    if family == "sam":
        from segment_anything import SamAutomaticMaskGenerator as Gen
    else:
        from sam2.automatic_mask_generator import SAM2AutomaticMaskGenerator as Gen
    gen = Gen(ref.model, points_per_side=pps, pred_iou_thresh=0.0, stability_score_thresh=0.0)
    t = time.time()
    out = gen.generate(img)
    print(f"reference automatic pps={pps}: {len(out)} masks in {time.time() - t:.0f}s", flush=True)
    return [m["segmentation"] for m in out]


def decode_runs(m, width, height):
    """A host Mask (bbox-local runs, alternating unset/set) as a dense bool array."""
    x, y, w, h = m["bbox"]
    flat = np.zeros(w * h, dtype=bool)
    pos = 0
    for i, run in enumerate(m["runs"]):
        if i % 2 == 1:
            flat[pos:pos + run] = True
        pos += run
    out = np.zeros((height, width), dtype=bool)
    out[y:y + h, x:x + w] = flat.reshape(h, w)
    return out


def dump_automatic(dump_bin, cfg, model, img_path, pps):
    import subprocess

    t = time.time()
    r = subprocess.run([dump_bin, str(cfg), model[0], model[1], str(img_path), str(pps)],
                       capture_output=True, text=True, env=dict(os.environ, OMP_NUM_THREADS="2"))
    if r.returncode != 0:
        raise RuntimeError(f"automatic_dump failed: {r.stderr[-2000:]}")
    data = json.loads(r.stdout)
    masks = [decode_runs(m, data["width"], data["height"]) for m in data["masks"]]
    print(f"ours automatic pps={pps}: {len(masks)} masks in {time.time() - t:.0f}s", flush=True)
    return masks


def match(ref_masks, ours):
    """For each non-empty reference mask, the best IoU among ours (boxes prefilter)."""
    def box(m):
        ys, xs = np.nonzero(m)
        return xs.min(), ys.min(), xs.max() + 1, ys.max() + 1

    ours_boxes = [box(m) for m in ours]
    best = []
    for r in ref_masks:
        if not r.any():
            continue
        rb = box(r)
        score = 0.0
        for m, b in zip(ours, ours_boxes):
            ix = min(rb[2], b[2]) - max(rb[0], b[0])
            iy = min(rb[3], b[3]) - max(rb[1], b[1])
            if ix <= 0 or iy <= 0:
                continue
            x0, y0 = min(rb[0], b[0]), min(rb[1], b[1])
            x1, y1 = max(rb[2], b[2]), max(rb[3], b[3])
            score = max(score, iou(r[y0:y1, x0:x1], m[y0:y1, x0:x1]))
            if score == 1.0:
                break
        best.append(score)
    return best


# ---------------------------------------------------------------------------------------------


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--server", action="append", default=[],
                    help="NAME=BINARY[:legacy] (repeatable)")
    ap.add_argument("--seed", action="store_true", help="also the seed's server (point prompts)")
    ap.add_argument("--families", default="sam,sam2")
    ap.add_argument("--auto", type=int, default=0, help="automatic with points_per_side N "
                    "(mask counts; with --auto-dump also matched IoU)")
    ap.add_argument("--auto-dump", default=None, help="the automatic_dump example binary, run "
                    "on the exporter's models (host/examples/automatic_dump.rs)")
    a = ap.parse_args()
    OUT.mkdir(parents=True, exist_ok=True)
    real = Path(os.environ.get("SAMGEO_REAL_DATA", "/work/shared/data/rasters"))
    img_path = real / "RGB.byte.tif"
    img = read_rgb(img_path)
    load0 = os.getloadavg()[0]
    t0 = time.time()
    servers = []
    try:
        for i, spec in enumerate(a.server):
            name, _, rest = spec.partition("=")
            servers.append(start_server(name, rest, 18110 + i))
        if a.seed:
            servers.append(bench.start_seed(2))
        rows, auto_rows = [], []
        for family in a.families.split(","):
            model = SAM if family == "sam" else SAM2
            ref = Reference(family, img)
            for case, prompt in prompts():
                best, candidates = ref.masks(prompt)
                row = dict(family=family, case=case, prompt=prompt, ref_px=int(best.sum()))
                for srv in servers:
                    if srv.name == "seed" and (case != "points (one)" or prompt.get("multimask")):
                        continue  # the seed ignores API boxes; see bench/RESULTS.md
                    mask, count = server_mask(srv, model, img_path, prompt)
                    target = best if count == 1 else np.logical_or.reduce(candidates)
                    row[srv.name] = dict(iou=iou(mask, target), px=int(mask.sum()), masks=count)
                rows.append(row)
                print(f"  {family} {case} {prompt}: " + ", ".join(
                    f"{s.name}={row[s.name]['iou']:.4f}" for s in servers if s.name in row),
                    flush=True)
            if a.auto:
                ref_masks = reference_automatic(family, ref, img, a.auto)
                arow = dict(family=family, pps=a.auto, ref_count=len(ref_masks),
                            ref_nonempty=sum(int(m.any()) for m in ref_masks))
                for srv in servers:
                    if srv.name == "seed":
                        continue
                    fields = dict(model_version=model[0], model_id=model[1], output_format="geotiff",
                                  points_per_side=a.auto, pred_iou_thresh=0, stability_score_thresh=0)
                    r, dt = bench.post(srv, "/segment/automatic", img_path, fields)
                    bench.check(r, f"{srv.name} automatic")
                    arow[srv.name] = int(r.headers.get("X-Samgeo-Masks", "-1"))
                if a.auto_dump:
                    ours = dump_automatic(a.auto_dump, write_config("dump", False, 18199), model,
                                          img_path, a.auto)
                    best = match(ref_masks, ours)
                    arow["dump"] = dict(count=len(ours), median=float(np.median(best)),
                                        min=float(min(best)),
                                        at_least_095=float(np.mean(np.array(best) >= 0.95)))
                auto_rows.append(arow)
                print(f"  automatic {arow}", flush=True)
            del ref
    finally:
        for s in servers:
            s.stop()
    names = [s.name for s in servers]
    (OUT / "raw.json").write_text(json.dumps(dict(rows=rows, auto=auto_rows), indent=1))
    report(rows, auto_rows, names, load0, os.getloadavg()[0], time.time() - t0)


def report(rows, auto_rows, names, load0, load1, seconds):
    lines = [f"Parity against the reference predictors (IoU of value > 0 per prompt; "
             f"{seconds:.0f}s, load average {load0:.1f} → {load1:.1f})", ""]
    head = "| family | case | prompts | " + " | ".join(f"{n} median | {n} min" for n in names) + " |"
    lines += [head, "|" + "---|" * (3 + 2 * len(names))]
    groups = {}
    for r in rows:
        groups.setdefault((r["family"], r["case"]), []).append(r)
    for (family, case), rs in groups.items():
        cells = []
        for n in names:
            vals = [r[n]["iou"] for r in rs if n in r]
            cells += [f"{statistics.median(vals):.3f}", f"{min(vals):.3f}"] if vals else ["", ""]
        lines.append(f"| {family} | {case} | {len(rs)} | " + " | ".join(cells) + " |")
    lines += ["", "| family | case | prompt | reference px | " +
              " | ".join(f"{n} IoU (px)" for n in names) + " |", "|" + "---|" * (4 + len(names))]
    for r in rows:
        p = {k: v for k, v in r["prompt"].items() if k != "multimask"}
        cells = [f"{r[n]['iou']:.4f} ({r[n]['px']})" if n in r else "" for n in names]
        lines.append(f"| {r['family']} | {r['case']} | `{json.dumps(p)}` | {r['ref_px']} | "
                     + " | ".join(cells) + " |")
    if auto_rows:
        ours = [n for n in names if n != "seed"]
        lines += ["", "| family | points_per_side | reference masks (non-empty) | " +
                  " | ".join(f"{n} masks" for n in ours) +
                  " | automatic_dump masks | matched IoU median | min | share ≥ 0.95 |",
                  "|" + "---|" * (7 + len(ours))]
        for r in auto_rows:
            d = r.get("dump") or {}
            lines.append(f"| {r['family']} | {r['pps']} | {r['ref_count']} ({r['ref_nonempty']}) | "
                         + " | ".join(str(r.get(n, "")) for n in ours)
                         + (f" | {d['count']} | {d['median']:.3f} | {d['min']:.3f} | "
                            f"{d['at_least_095']:.2f} |" if d else " | | | | |"))
    text = "\n".join(lines) + "\n"
    (OUT / "results.md").write_text(text)
    print(text)


if __name__ == "__main__":
    main()
