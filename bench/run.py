#!/usr/bin/env python3
"""samgeo-rs vs the seed (segment-geospatial's samgeo-api), side by side on identical
random-weight SAM ViT-B weights (bench/make_models.py), plus the bare ONNX Runtime floor and
pixel parity. Run through bench/run.sh (sets up everything first); see bench/README.md.

Both servers listen on 127.0.0.1 only and get the same thread budget (--threads, default 2:
OMP/MKL threads and torch.set_num_threads for the seed, runtime.intra_threads for ours).
Every timed loop is bounded (--runs).
"""

import argparse
import io
import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import requests

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "bench" / "out"
MODELS = OUT / "models"
SEED_PORT, OURS_PORT = 18101, 18102
TIMEOUT = 1800


# ---------------------------------------------------------------------------------------------
# inputs


def make_inputs(real_dir: Path, runs: int):
    """RGB.byte.tif, a synthetic 4096x4096 GeoTIFF built from it, and pixel-identical copies of
    RGB.byte.tif with a different tag each (distinct bytes → distinct embedding-cache keys)."""
    import rasterio
    from rasterio.enums import Resampling

    inputs = OUT / "inputs"
    inputs.mkdir(parents=True, exist_ok=True)
    src = real_dir / "RGB.byte.tif"
    rgb = inputs / "RGB.byte.tif"
    if not rgb.exists():
        shutil.copy(src, rgb)
    big = inputs / "synthetic_4096.tif"
    if not big.exists():
        with rasterio.open(src) as s:
            data = s.read(out_shape=(3, 4096, 4096), resampling=Resampling.bilinear)
            rng = np.random.default_rng(7)
            noise = rng.integers(-6, 7, size=data.shape, dtype=np.int16)
            data = np.clip(data.astype(np.int16) + noise, 0, 255).astype(np.uint8)
            t = s.transform * s.transform.scale(s.width / 4096, s.height / 4096)
            profile = dict(driver="GTiff", width=4096, height=4096, count=3, dtype="uint8",
                           crs=s.crs, transform=t, tiled=True, blockxsize=512, blockysize=512,
                           compress="deflate", photometric="RGB")
        with rasterio.open(big, "w", **profile) as d:
            d.write(data)
    variants = []
    for i in range(runs + 2):
        v = inputs / f"RGB.byte.v{i}.tif"
        if not v.exists():
            shutil.copy(rgb, v)
            with rasterio.open(v, "r+") as d:
                d.update_tags(BENCH_VARIANT=str(i))
        variants.append(v)
    return rgb, big, variants


# ---------------------------------------------------------------------------------------------
# servers


class Server:
    def __init__(self, name, cmd, env, port, log):
        self.name, self.port = name, port
        self.url = f"http://127.0.0.1:{port}"
        self.log = open(log, "w")
        self.proc = subprocess.Popen(cmd, env=env, stdout=self.log, stderr=subprocess.STDOUT,
                                     cwd=ROOT, start_new_session=True)
        t = time.time()
        while True:
            if self.proc.poll() is not None:
                raise RuntimeError(f"{name} exited with {self.proc.returncode}; see {log}")
            try:
                if requests.get(self.url + "/health", timeout=2).ok:
                    break
            except requests.RequestException:
                pass
            if time.time() - t > 300:
                raise RuntimeError(f"{name} did not answer /health in 300 s; see {log}")
            time.sleep(0.3)
        self.startup_s = time.time() - t

    def pid(self):
        return self.proc.pid

    def rss(self):
        """(VmHWM, VmRSS) in MiB of the server process."""
        vals = {}
        try:
            for line in open(f"/proc/{self.proc.pid}/status"):
                k, _, v = line.partition(":")
                if k in ("VmHWM", "VmRSS"):
                    vals[k] = int(v.split()[0]) / 1024
        except OSError:
            pass
        return vals.get("VmHWM"), vals.get("VmRSS")

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.log.close()


def start_seed(threads):
    env = dict(os.environ)
    env.update(
        OMP_NUM_THREADS=str(threads), MKL_NUM_THREADS=str(threads),
        TORCH_HOME=str(MODELS / "torch"), HF_HOME=str(MODELS / "hf"), HF_HUB_OFFLINE="1",
        CUDA_VISIBLE_DEVICES="", TQDM_DISABLE="1", PYTHONUNBUFFERED="1",
    )
    venv = ROOT / "bench" / ".venv" / "bin"
    # torch.set_num_threads follows OMP_NUM_THREADS; uvicorn runs in this process (no --reload).
    cmd = [str(venv / "samgeo-api"), "--host", "127.0.0.1", "--port", str(SEED_PORT)]
    return Server("seed", cmd, env, SEED_PORT, OUT / "seed.log")


def fast_decoder() -> Path:
    """`export-models --decoder fast` of the bench's SAM ViT-B checkpoint (exported on first
    use; same weights as sam_vit_b_decoder.onnx)."""
    path = MODELS / "onnx" / "sam_vit_b_decoder_fast.onnx"
    if not path.exists():
        sys.path.insert(0, str(ROOT / "scripts"))
        import torch
        from export_models import export_sam, load_sam

        del torch
        export_sam(load_sam(MODELS / "torch" / "sam_vit_b_01ec64.pth", "vit_b"), None, path,
                   "fast")
    return path


def write_ours_config(threads, concurrency, providers=("cpu",), fast=False):
    onnx = MODELS / "onnx"
    sam_decoder = fast_decoder() if fast else onnx / "sam_vit_b_decoder.onnx"
    provider_list = ", ".join(f'"{p}"' for p in providers)
    target = Path(os.environ.get("CARGO_TARGET_DIR", ROOT / "target"))
    # The project's copy (scripts/setup), else the same library from the bench venv's wheel.
    import onnxruntime
    wheel = Path(onnxruntime.__file__).parent / "capi" / "libonnxruntime.so.1.31.1"
    ort = os.environ.get("ORT_DYLIB_PATH") or str(
        next(p for p in [ROOT / ".ort/libonnxruntime.so.1.31.1",
                         Path("/work/main/.ort/libonnxruntime.so.1.31.1"), wheel] if p.exists()))
    plugins = os.environ.get("SAMGEO_PLUGIN_DIR") or str(target / "plugins" / "dist")
    cfg = OUT / "samgeo-bench.toml"
    cfg.write_text(f"""# written by bench/run.py
[server]
host = "127.0.0.1"
port = {OURS_PORT}
request_timeout_secs = {TIMEOUT}
max_concurrent_inferences = {concurrency}
max_queued_requests = 64
cache_dir = "{OUT / 'samgeo-cache'}"

[runtime]
onnxruntime_library = "{ort}"
execution_providers = [{provider_list}]
intra_threads = {threads}

[caches]
max_loaded_models = 2
embedding_cache_bytes = 1073741824

[models.sam.vit_b]
encoder = "{onnx / 'sam_vit_b_encoder.onnx'}"
decoder = "{sam_decoder}"

[models.sam2."sam2-hiera-tiny"]
encoder = "{onnx / 'sam2_hiera_tiny.encoder.onnx'}"
decoder = "{onnx / 'sam2_hiera_tiny.decoder.onnx'}"

[plugins]
directory = "{plugins}"
""")
    return cfg


def start_ours(threads, concurrency, providers=("cpu",), fast=False):
    cfg = write_ours_config(threads, concurrency, providers, fast)
    target = Path(os.environ.get("CARGO_TARGET_DIR", ROOT / "target"))
    binary = target / "release" / "samgeo-api"
    env = dict(os.environ)
    env.update(OMP_NUM_THREADS=str(threads))
    return Server("ours", [str(binary), "--config", str(cfg)], env, OURS_PORT, OUT / "ours.log")


# ---------------------------------------------------------------------------------------------
# requests


def post(server, path, image: Path, fields: dict):
    with open(image, "rb") as f:
        body = f.read()
    t = time.perf_counter()
    r = requests.post(server.url + path, files={"file": (image.name, body, "image/tiff")},
                      data={k: str(v) for k, v in fields.items()}, timeout=TIMEOUT)
    dt = time.perf_counter() - t
    return r, dt


def point_fields(model, x, y, fmt="geojson"):
    version, mid = model
    return dict(model_version=version, model_id=mid, point_coords=json.dumps([[x, y]]),
                point_labels="[1]", output_format=fmt)


def points_for(image_size, n):
    """n distinct points spread over the image (deterministic)."""
    w, h = image_size
    out = []
    for i in range(n):
        fx = 0.2 + 0.6 * ((i * 0.618034) % 1.0)
        fy = 0.2 + 0.6 * ((i * 0.381966 + 0.3) % 1.0)
        out.append((int(w * fx), int(h * fy)))
    return out


def check(r, what):
    if r.status_code != 200:
        raise RuntimeError(f"{what}: HTTP {r.status_code}: {r.text[:300]}")


def timed(runs, fn):
    times = []
    for i in range(runs):
        times.append(fn(i))
    return times


class Table:
    def __init__(self):
        self.rows = []  # (name, seed list|None, ours list|None, unit, target)

    def add(self, name, seed, ours, unit="ms", target="", note=""):
        self.rows.append((name, seed, ours, unit, target, note))
        print(f"  {name}: seed={fmt_stat(seed, unit)} ours={fmt_stat(ours, unit)}", flush=True)


def med(v):
    return statistics.median(v) if v else None


def fmt_stat(v, unit):
    if v is None:
        return "—"
    if isinstance(v, (int, float)):
        m = v
    else:
        m = med(v)
    if m is None:
        return "—"
    if unit == "ms":
        return f"{m * 1000:.1f} ms" if m < 1 else f"{m:.2f} s"
    if unit == "req/s":
        return f"{m:.2f} req/s"
    if unit == "MiB":
        return f"{m:.0f} MiB"
    return f"{m:.3f}"


# ---------------------------------------------------------------------------------------------
# benchmark cases


def loadavg():
    try:
        return open("/proc/loadavg").read().split()[0]
    except OSError:
        return "?"


def interleaved(servers, runs, fn, label):
    """Runs fn(srv, i) for i in range(runs), alternating the servers (and their order) run by
    run so that load from elsewhere on the machine hits both alike. {name: [seconds]}."""
    out = {s.name: [] for s in servers}
    la0 = loadavg()
    for i in range(runs):
        order = servers if i % 2 == 0 else servers[::-1]
        for srv in order:
            out[srv.name].append(fn(srv, i))
    print(f"  {label}: " + "  ".join(f"{k}={fmt_stat(v, 'ms')}" for k, v in out.items())
          + f"  (load {la0} -> {loadavg()})", flush=True)
    return out


def bench_cases(servers, model, rgb, big, variants, runs, auto_runs, automatic_pps=(16, 32),
                skip=frozenset(), auto_warmup=True):
    """All timed cases, each interleaved across the servers; {server: {case: [seconds...]}}."""
    res = {s.name: {} for s in servers}
    sizes = {rgb: (791, 718), big: (4096, 4096)}

    def store(case, d):
        for k, v in d.items():
            res[k][case] = v

    def cold(image, tag):
        pts = points_for(sizes[image], runs)

        def one(srv, i):
            requests.delete(srv.url + "/models", timeout=60).raise_for_status()
            r, dt = post(srv, "/segment/predict", image, point_fields(model, *pts[i]))
            check(r, f"{srv.name} cold {tag}")
            return dt
        store(f"cold_{tag}", interleaved(servers, runs, one, f"cold predict {tag}"))

    def warm(image, tag, fmt):
        pts = points_for(sizes[image], runs + 1)
        for srv in servers:  # prime: model loaded, image encoded
            r, _ = post(srv, "/segment/predict", image, point_fields(model, *pts[-1], fmt))
            check(r, f"{srv.name} warm prime {tag}")

        def one(srv, i):
            r, dt = post(srv, "/segment/predict", image, point_fields(model, *pts[i], fmt))
            check(r, f"{srv.name} warm {tag} {fmt}")
            if srv.name == "ours" and r.headers.get("x-samgeo-cache") != "hit":
                print(f"    warning: ours answered X-Samgeo-Cache={r.headers.get('x-samgeo-cache')}")
            return dt
        store(f"warm_{tag}_{fmt}", interleaved(servers, runs, one, f"warm predict {tag} {fmt}"))

    if "cold" not in skip:
        cold(rgb, "rgb")
    if "warm" not in skip:
        warm(rgb, "rgb", "geojson")
        warm(rgb, "rgb", "geotiff")

    def box(srv, i):
        x, y = points_for(sizes[rgb], runs)[i]
        f = dict(model_version=model[0], model_id=model[1], output_format="geojson",
                 boxes=json.dumps([[x - 60, y - 60, x + 60, y + 60]]))
        r, dt = post(srv, "/segment/predict", rgb, f)
        check(r, f"{srv.name} box")
        return dt
    if "box" not in skip:
        store("box_rgb", interleaved(servers, runs, box, "box prompt rgb"))

    for srv in (servers if "conc" not in skip else []):
        print(f"[{srv.name}] 8 concurrent clients, warm RGB.byte", flush=True)
        res[srv.name]["concurrent"] = concurrent(srv, model, rgb, sizes[rgb], clients=8,
                                                 per_client=max(3, runs))
        print(f"  {res[srv.name]['concurrent']}", flush=True)

    if big is not None:
        cold(big, "big")
        warm(big, "big", "geojson")
        warm(big, "big", "geotiff")

    for pps in automatic_pps:
        fields = dict(model_version=model[0], model_id=model[1], points_per_side=pps,
                      output_format="geojson")
        for srv in (servers if auto_warmup else []):
            # One untimed call: the seed builds a model instance per generator configuration.
            r, _ = post(srv, "/segment/automatic", variants[-1], fields)
        statuses = {s.name: [] for s in servers}

        def auto(srv, i):
            r, dt = post(srv, "/segment/automatic", variants[i], fields)
            statuses[srv.name].append((r.status_code, r.headers.get("x-samgeo-masks")))
            if r.status_code != 200:
                print(f"    {srv.name} automatic: HTTP {r.status_code} {r.text[:200]}")
            return dt
        store(f"auto_{pps}", interleaved(servers, auto_runs, auto,
                                         f"automatic pps={pps} (image not cached)"))
        store(f"auto_{pps}_status", statuses)
    return res


SAM2 = ("sam2", "sam2-hiera-tiny")


def bench_sam2(servers, rgb, runs):
    """SAM2 hiera-tiny: cold and warm predict on RGB.byte.tif, interleaved."""
    res = {s.name: {} for s in servers}
    pts = points_for((791, 718), runs + 1)

    def cold(srv, i):
        requests.delete(srv.url + "/models", timeout=60).raise_for_status()
        r, dt = post(srv, "/segment/predict", rgb, point_fields(SAM2, *pts[i]))
        check(r, f"{srv.name} sam2 cold")
        return dt

    def warm(srv, i):
        r, dt = post(srv, "/segment/predict", rgb, point_fields(SAM2, *pts[i]))
        check(r, f"{srv.name} sam2 warm")
        return dt
    for case, fn in (("sam2_cold_rgb", cold), ("sam2_warm_rgb_geojson", warm)):
        for k, v in interleaved(servers, runs, fn, case).items():
            res[k][case] = v
    return res


def concurrent(srv, model, image, size, clients, per_client):
    pts = points_for(size, clients * per_client + 1)
    r, _ = post(srv, "/segment/predict", image, point_fields(model, *pts[-1]))
    check(r, f"{srv.name} concurrent prime")
    lat, errors = [], []
    lock = threading.Lock()

    def client(c):
        for k in range(per_client):
            r, dt = post(srv, "/segment/predict", image, point_fields(model, *pts[c * per_client + k]))
            with lock:
                if r.status_code == 200:
                    lat.append(dt)
                else:
                    errors.append(r.status_code)

    t = time.perf_counter()
    with ThreadPoolExecutor(clients) as ex:
        list(ex.map(client, range(clients)))
    wall = time.perf_counter() - t
    lat.sort()
    p95 = lat[min(len(lat) - 1, int(round(0.95 * (len(lat) - 1))))] if lat else None
    return dict(throughput=len(lat) / wall, p95=p95, median=med(lat), n=len(lat), errors=errors)


# ---------------------------------------------------------------------------------------------
# floor: bare ONNX Runtime (and torch) on the same weights and threads


def sam_preprocess(path: Path):
    """SAM's preprocessing as segment-anything does it (PIL resize of the longest side to 1024,
    normalise, pad), giving the encoder input."""
    import rasterio
    from PIL import Image

    with rasterio.open(path) as s:
        img = np.transpose(s.read([1, 2, 3]), (1, 2, 0))
    h, w = img.shape[:2]
    scale = 1024 / max(h, w)
    nh, nw = int(h * scale + 0.5), int(w * scale + 0.5)
    r = np.asarray(Image.fromarray(img).resize((nw, nh)), dtype=np.float32)
    mean = np.array([123.675, 116.28, 103.53], np.float32)
    std = np.array([58.395, 57.12, 57.375], np.float32)
    x = np.zeros((1, 3, 1024, 1024), np.float32)
    x[0, :, :nh, :nw] = ((r - mean) / std).transpose(2, 0, 1)
    return x, (h, w), (nh, nw)


def floor_ort(rgb: Path, threads: int, runs: int):
    import onnxruntime as ort

    so = ort.SessionOptions()
    so.intra_op_num_threads = threads
    so.inter_op_num_threads = 1
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    onnx = MODELS / "onnx"
    t = time.perf_counter()
    enc = ort.InferenceSession(str(onnx / "sam_vit_b_encoder.onnx"), so, providers=["CPUExecutionProvider"])
    dec = ort.InferenceSession(str(onnx / "sam_vit_b_decoder.onnx"), so, providers=["CPUExecutionProvider"])
    load = time.perf_counter() - t
    x, (h, w), (nh, nw) = sam_preprocess(rgb)
    enc_t = []
    for _ in range(runs):
        t = time.perf_counter()
        emb = enc.run(["image_embeddings"], {"image": x})[0]
        enc_t.append(time.perf_counter() - t)
    sx = nw / w
    feeds = dict(image_embeddings=emb,
                 point_coords=np.array([[[300 * sx, 300 * sx], [0, 0]]], np.float32),
                 point_labels=np.array([[1, -1]], np.float32),
                 mask_input=np.zeros((1, 1, 256, 256), np.float32),
                 has_mask_input=np.zeros(1, np.float32),
                 orig_im_size=np.array([h, w], np.float32))
    dec.run(None, feeds)
    dec_t = []
    for _ in range(max(runs, 20)):
        t = time.perf_counter()
        dec.run(None, feeds)
        dec_t.append(time.perf_counter() - t)
    # 64 prompts (one automatic batch), sequential single-prompt calls as the official export
    # takes one prompt row per call.
    return dict(load=[load], encode=enc_t, decode=dec_t)


def floor_torch(rgb: Path, threads: int, runs: int):
    import torch
    from segment_anything import sam_model_registry

    torch.set_num_threads(threads)
    t = time.perf_counter()
    sam = sam_model_registry["vit_b"](checkpoint=str(MODELS / "torch" / "sam_vit_b_01ec64.pth")).eval()
    load = time.perf_counter() - t
    x, _, _ = sam_preprocess(rgb)
    xt = torch.from_numpy(x)
    enc_t = []
    with torch.inference_mode():
        for _ in range(max(1, runs // 2)):
            t = time.perf_counter()
            sam.image_encoder(xt)
            enc_t.append(time.perf_counter() - t)
    return dict(load=[load], encode=enc_t)


# ---------------------------------------------------------------------------------------------
# parity


def read_mask_tiff(content: bytes):
    import rasterio
    from rasterio.io import MemoryFile

    with MemoryFile(content) as m, m.open() as d:
        return d.read(1)


def parity(seed, ours, model, rgb, n_points):
    """Geotiff masks from both servers for the same prompts; IoU of (value > 0)."""
    out = []
    prompts = [("point", dict(point_coords=json.dumps([[x, y]]), point_labels="[1]"))
               for x, y in points_for((791, 718), n_points)]
    prompts.append(("2 points", dict(point_coords=json.dumps([[300, 300], [420, 380]]),
                                     point_labels="[1, 1]")))
    prompts.append(("box", dict(boxes=json.dumps([[250, 250, 450, 420]]))))
    for kind, f in prompts:
        fields = dict(model_version=model[0], model_id=model[1], output_format="geotiff", **f)
        masks = []
        for srv in (seed, ours):
            r, _ = post(srv, "/segment/predict", rgb, fields)
            check(r, f"{srv.name} parity")
            masks.append(read_mask_tiff(r.content) > 0)
        a, b = masks
        if a.shape != b.shape:
            out.append((kind, f, None, a.sum(), b.sum(), f"shapes {a.shape} vs {b.shape}"))
            continue
        union = np.logical_or(a, b).sum()
        iou = 1.0 if union == 0 else np.logical_and(a, b).sum() / union
        out.append((kind, f, float(iou), int(a.sum()), int(b.sum()), ""))
        print(f"  parity {kind} {f}: IoU={iou:.4f} seed={a.sum()} ours={b.sum()} px", flush=True)
    return out


# ---------------------------------------------------------------------------------------------
# report


def ratio(o, s):
    if o is None or s is None or s == 0:
        return "—"
    return f"{o / s:.3f}×"


def render(args, machine, seed_res, ours_res, floor, tfloor, rss, par, startup):
    S = lambda k: (seed_res or {}).get(k)
    O = lambda k: (ours_res or {}).get(k)
    lines = []
    add = lines.append
    add(f"Model: SAM ViT-B (and SAM2 hiera-tiny where marked), random weights "
        f"({args.seed_tag}); threads = {args.threads}; runs = {args.runs} (median; automatic: "
        f"{args.auto_runs}); max_concurrent_inferences (ours) = {args.concurrency}")
    add("")
    add("| case | seed | ours | ours/seed | target |")
    add("|---|---:|---:|---:|---|")

    def row(name, k, target=""):
        s, o = S(k), O(k)
        ms, mo = (med(s) if s else None), (med(o) if o else None)
        add(f"| {name} | {fmt_stat(ms, 'ms')} | {fmt_stat(mo, 'ms')} | {ratio(mo, ms)} | {target} |")

    row("cold predict, RGB.byte 791×718 (load + encode + decode)", "cold_rgb", "≤ 0.8×")
    row("warm predict, RGB.byte, geojson", "warm_rgb_geojson", "≤ 1/30 (0.033×)")
    row("warm predict, RGB.byte, geotiff", "warm_rgb_geotiff", "≤ 1/30 (0.033×)")
    row("box prompt (warm), RGB.byte, geojson", "box_rgb", "")
    row("cold predict, 4096×4096 GeoTIFF", "cold_big", "≤ 0.8×")
    row("warm predict, 4096×4096, geojson", "warm_big_geojson", "≤ 1/30")
    row("warm predict, 4096×4096, geotiff", "warm_big_geotiff", "≤ 1/30")
    row("SAM2 hiera-tiny: cold predict, RGB.byte", "sam2_cold_rgb", "≤ 0.8×")
    row("SAM2 hiera-tiny: warm predict, RGB.byte, geojson", "sam2_warm_rgb_geojson", "≤ 1/30")
    row("automatic, points_per_side 16, RGB.byte (encode included)", "auto_16", "")
    row("automatic, points_per_side 32, RGB.byte (encode included)", "auto_32", "≤ 1/3 (0.33×)")
    cs, co = S("concurrent"), O("concurrent")
    if cs or co:
        g = lambda d, k: d.get(k) if d else None
        add(f"| 8 concurrent clients, warm: throughput | {fmt_stat(g(cs, 'throughput'), 'req/s')} | "
            f"{fmt_stat(g(co, 'throughput'), 'req/s')} | "
            f"{ratio(g(co, 'throughput'), g(cs, 'throughput'))} (higher is better) | |")
        add(f"| 8 concurrent clients, warm: p95 latency | {fmt_stat(g(cs, 'p95'), 'ms')} | "
            f"{fmt_stat(g(co, 'p95'), 'ms')} | {ratio(g(co, 'p95'), g(cs, 'p95'))} | |")
        for who, d, res in (("seed", cs, seed_res), ("ours", co, ours_res)):
            if d and res and res.get("warm_rgb_geojson"):
                single = med(res["warm_rgb_geojson"])
                add(f"| {who}: 8-client p95 / single-client warm median | | | {d['p95'] / single:.2f}× | "
                    f"< 4× |")
    if rss:
        add(f"| peak RSS (VmHWM) after all cases | {fmt_stat(rss.get('seed'), 'MiB')} | "
            f"{fmt_stat(rss.get('ours'), 'MiB')} | {ratio(rss.get('ours'), rss.get('seed'))} | bounded by caches |")
    if startup:
        add(f"| server start to first /health | {fmt_stat(startup.get('seed'), 'ms')} | "
            f"{fmt_stat(startup.get('ours'), 'ms')} | {ratio(startup.get('ours'), startup.get('seed'))} | |")
    if floor:
        add("")
        add("Floor (same weights, same threads, no server):")
        add("")
        add("| floor | time |")
        add("|---|---:|")
        add(f"| ONNX Runtime (Python) session load, encoder + decoder | {fmt_stat(med(floor['load']), 'ms')} |")
        add(f"| ONNX Runtime encoder run, [1,3,1024,1024] | {fmt_stat(med(floor['encode']), 'ms')} |")
        add(f"| ONNX Runtime decoder run, 1 point | {fmt_stat(med(floor['decode']), 'ms')} |")
        if tfloor:
            add(f"| torch checkpoint load + build (segment-anything) | {fmt_stat(med(tfloor['load']), 'ms')} |")
            add(f"| torch image_encoder forward | {fmt_stat(med(tfloor['encode']), 'ms')} |")
        if ours_res and ours_res.get("warm_rgb_geojson"):
            add(f"| ours warm predict − ORT decoder floor (host + HTTP overhead) | "
                f"{fmt_stat(med(ours_res['warm_rgb_geojson']) - med(floor['decode']), 'ms')} |")
        if ours_res and ours_res.get("cold_rgb"):
            add(f"| ours cold predict − (ORT load + encode + decode floor) | "
                f"{fmt_stat(med(ours_res['cold_rgb']) - med(floor['load']) - med(floor['encode']) - med(floor['decode']), 'ms')} |")
    for who, res in (("seed", seed_res), ("ours", ours_res)):
        for pps in (16, 32):
            st = (res or {}).get(f"auto_{pps}_status")
            if st:
                add("")
                add(f"{who} automatic pps={pps}: HTTP status / X-Samgeo-Masks per run: {st}")
    if par:
        add("")
        add("Parity (geotiff masks, pixels with value > 0, RGB.byte.tif):")
        add("")
        add("| prompt | IoU | seed px | ours px |")
        add("|---|---:|---:|---:|")
        for kind, f, iou, a, b, note in par:
            p = f.get("point_coords") or f.get("boxes")
            add(f"| {kind} {p} | {'—' if iou is None else f'{iou:.4f}'} | {a} | {b} | {note}")
    add("")
    add("Machine: " + machine)
    return "\n".join(lines)


def machine_description():
    import platform

    cpu = "?"
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    return f"{cpu}, {os.cpu_count()} CPUs, {mem:.0f} GiB RAM, {platform.platform()}"


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--auto-runs", type=int, default=5, help="runs of the automatic cases")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--concurrency", type=int, default=2,
                    help="ours: server.max_concurrent_inferences")
    ap.add_argument("--only", choices=["seed", "ours"], default=None, help="one server only")
    ap.add_argument("--skip", default="",
                    help="comma list of: cold,warm,box,conc,big,auto,sam2,parity,floor")
    ap.add_argument("--no-auto-warmup", action="store_true",
                    help="no untimed automatic call first (the seed's timing then includes "
                         "building its generator model instance, ~1%% of a pps=32 run)")
    ap.add_argument("--tag", default="", help="suffix of the output files (results<tag>.md, ...)")
    ap.add_argument("--auto-pps", default="16,32")
    ap.add_argument("--providers", default="cpu",
                    help="ours: runtime.execution_providers, comma list (bench/gpu.sh: cuda,cpu)")
    ap.add_argument("--fast-decoder", action="store_true",
                    help="ours: SAM with `export-models --decoder fast` (exported on first use)")
    ap.add_argument("--real-data", default=os.environ.get("SAMGEO_REAL_DATA", "/work/shared/data/rasters"))
    args = ap.parse_args()
    args.seed_tag = "make_models.py"
    skip = set(filter(None, args.skip.split(",")))
    model = ("sam", "vit_b")
    rgb, big, variants = make_inputs(Path(args.real_data), args.runs)
    pps = tuple(int(p) for p in args.auto_pps.split(",") if p) if "auto" not in skip else ()
    machine = machine_description()
    print("machine:", machine, flush=True)

    results, rss, startup = {}, {}, {}
    servers = {}
    par = None
    try:
        for who in ("ours", "seed"):
            if args.only and args.only != who:
                continue
            print(f"starting {who}", flush=True)
            srv = (start_ours(args.threads, args.concurrency, args.providers.split(","),
                              args.fast_decoder)
                   if who == "ours" else start_seed(args.threads))
            servers[who] = srv
            startup[who] = srv.startup_s
        order = list(servers.values())
        results = bench_cases(order, model, rgb, big if "big" not in skip else None, variants,
                              args.runs, args.auto_runs, automatic_pps=pps, skip=skip,
                              auto_warmup=not args.no_auto_warmup)
        if "sam2" not in skip:
            for k, v in bench_sam2(order, rgb, args.runs).items():
                results[k].update(v)
        for who, srv in servers.items():
            rss[who] = srv.rss()[0]
            (OUT / f"raw_{who}{args.tag}.json").write_text(json.dumps(results[who], indent=1, default=str))
        if "parity" not in skip and "seed" in servers and "ours" in servers:
            print("parity", flush=True)
            par = parity(servers["seed"], servers["ours"], model, rgb, 5)
            if "sam2" not in skip:
                par += [("SAM2 " + p[0],) + tuple(p[1:]) for p in
                        parity(servers["seed"], servers["ours"], SAM2, rgb, 3)]
    finally:
        for s in servers.values():
            s.stop()
    floor = tfloor = None
    if "floor" not in skip:
        print("floor: ONNX Runtime", flush=True)
        floor = floor_ort(rgb, args.threads, args.runs)
        print("floor: torch", flush=True)
        tfloor = floor_torch(rgb, args.threads, args.runs)
    text = render(args, machine, results.get("seed"), results.get("ours"), floor, tfloor, rss,
                  par, startup)
    print()
    print(text)
    (OUT / f"results{args.tag}.md").write_text(text + "\n")


if __name__ == "__main__":
    main()
