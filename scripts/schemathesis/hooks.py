"""Schemathesis hooks for samgeo-rs: the `file` part gets real images.

Random bytes would make every request a 400 ("Cannot read the image"), so the run would never
get past the image. This strategy draws small uncompressed TIFFs (RGB or grey, 8-bit, some with
GeoTIFF georeferencing in UTM 18N) with a coloured square on a background, the kind of scene the
demo models segment, and now and then bytes that are not an image at all.
"""

import json
import os
import random
import struct

from hypothesis import strategies as st

import schemathesis

# TIFF field types.
SHORT, LONG, DOUBLE = 3, 4, 12


def tiff(width, height, bands, background, square, georef):
    """An uncompressed little-endian (Geo)TIFF, one strip, chunky samples."""
    pixels = bytearray()
    x0, y0, x1, y1 = width // 4, height // 4, (3 * width) // 4, (3 * height) // 4
    for y in range(height):
        for x in range(width):
            colour = square if (x0 <= x < x1 and y0 <= y < y1) else background
            pixels += bytes(colour[:bands])
    entries = []  # (tag, type, values)
    entries.append((256, LONG, [width]))
    entries.append((257, LONG, [height]))
    entries.append((258, SHORT, [8] * bands))
    entries.append((259, SHORT, [1]))
    entries.append((262, SHORT, [2 if bands == 3 else 1]))
    entries.append((273, LONG, [0]))  # strip offset, patched below
    entries.append((277, SHORT, [bands]))
    entries.append((278, LONG, [height]))
    entries.append((279, LONG, [len(pixels)]))
    entries.append((284, SHORT, [1]))
    if georef:
        # 10 m pixels in EPSG:32618, top-left corner at (500000, 4000000).
        entries.append((33550, DOUBLE, [10.0, 10.0, 0.0]))
        entries.append((33922, DOUBLE, [0.0, 0.0, 0.0, 500000.0, 4000000.0, 0.0]))
        entries.append((34735, SHORT, [1, 1, 0, 3, 1024, 0, 1, 1, 1025, 0, 1, 1, 3072, 0, 1, 32618]))
    entries.sort()
    size = {SHORT: 2, LONG: 4, DOUBLE: 8}
    fmt = {SHORT: "H", LONG: "I", DOUBLE: "d"}
    ifd_offset = 8
    ifd_size = 2 + 12 * len(entries) + 4
    extra = bytearray()
    extra_offset = ifd_offset + ifd_size
    pixel_offset = None
    records = []
    for tag, kind, values in entries:
        data = struct.pack("<" + fmt[kind] * len(values), *values)
        records.append([tag, kind, values, data])
    for record in records:
        if len(record[3]) > 4:
            record.append(extra_offset + len(extra))
            extra += record[3]
            if len(extra) % 2:
                extra += b"\0"
        else:
            record.append(None)
    pixel_offset = extra_offset + len(extra)
    out = bytearray(b"II*\0" + struct.pack("<I", ifd_offset))
    out += struct.pack("<H", len(records))
    for tag, kind, values, data, offset in records:
        if tag == 273:
            data = struct.pack("<I", pixel_offset)
        if offset is None:
            out += struct.pack("<HHI", tag, kind, len(values)) + data.ljust(4, b"\0")
        else:
            out += struct.pack("<HHII", tag, kind, len(values), offset)
    out += struct.pack("<I", 0)
    out += extra
    out += pixels
    return bytes(out)


colour = st.tuples(*[st.integers(0, 255)] * 3)

images = st.builds(
    tiff,
    width=st.integers(8, 48),
    height=st.integers(8, 48),
    bands=st.sampled_from([3, 3, 1]),
    background=colour,
    square=colour,
    georef=st.booleans(),
)

not_images = st.sampled_from([b"", b"II*\0garbage", b"<html></html>", b"\x89PNG\r\n\x1a\n"])

schemathesis.openapi.media_type("image/tiff", st.one_of(images, images, images, not_images))


# The automatic generator's cost grows with points_per_side² × 4^crop_n_layers: at the allowed
# maxima (256, 4) one request decodes 22 million prompts, and the default grid (32², 1024 prompts)
# takes half a minute on a debug build. Their ranges are checked by unit tests and the bad-input
# table; here they are kept small so that the run fits in a minute or two: a larger value is
# capped, and an absent one is sent as the small value too (absent means the server's default,
# the expensive 32² grid). Values of another type (negative testing) pass unchanged.
CHEAP = {"points_per_side": 6, "crop_n_layers": 1}
CHEAP_DEFAULT = {"points_per_side": 6, "crop_n_layers": 0}

# Generated prompts are random JSON-ish strings, and even well-formed ones fall outside the drawn
# image, so /segment/predict would only ever answer 4xx. On about half its cases the hook swaps in
# an image of known size with points and/or boxes inside it, and keeps only the generated fields
# that are valid; the other half go out as generated (negative testing). /segment/text likewise
# (most generated forms lack the prompt or the file): half get an image and a prompt.
PREDICT_FIELDS = {"multimask_output", "all_candidates", "min_size", "max_size"}
FORMATS = ["geojson", "geotiff", "png", "json", "detections"]
MODELS = [(None, None), ("sam", None), ("sam", "vit_b"), ("sam2", None), ("sam2", "sam2-hiera-tiny")]
# A fixed seed so that the same cases get the same edits from run to run.
rng = random.Random(int(os.environ.get("SCHEMATHESIS_SEED", "20261202")))


def is_int(value):
    return isinstance(value, int) and not isinstance(value, bool)


def cheap_automatic(body):
    for name, most in CHEAP.items():
        value = body.get(name)
        if value is None:
            body[name] = CHEAP_DEFAULT[name]
        elif is_int(value) and value > most:
            body[name] = most


def drawn_image():
    """An image from the hook's own generator, and its width and height."""
    width, height = rng.randint(16, 48), rng.randint(16, 48)
    bands = rng.choice([3, 3, 1])
    colours = [tuple(rng.randint(0, 255) for _ in range(3)) for _ in range(2)]
    return tiff(width, height, bands, colours[0], colours[1], rng.random() < 0.5), width, height


def valid_text(body):
    """A valid /segment/text form: a real image, a string prompt, and the generated sizes if valid."""
    prompt = body.get("prompt")
    kept = {k: v for k, v in body.items() if k in ("min_size", "max_size")}
    if not (is_int(kept.get("min_size", 0)) and 0 <= kept.get("min_size", 0) < 2**31):
        del kept["min_size"]
    if not (is_int(kept.get("max_size", 0)) and abs(kept.get("max_size", 0)) < 2**31):
        del kept["max_size"]
    body.clear()
    body.update(kept)
    body["file"] = drawn_image()[0]
    body["prompt"] = prompt if isinstance(prompt, str) else rng.choice(["red", "building", "tree"])
    body["output_format"] = rng.choice(FORMATS)
    if rng.random() < 0.5:
        body["model_id"] = rng.choice(["facebook/sam3", "facebook/sam3.1"])


def valid_predict(body):
    """A valid /segment/predict form: a real image, prompts inside it, the valid generated fields."""
    image, width, height = drawn_image()
    kept = {k: v for k, v in body.items() if k in PREDICT_FIELDS}
    if not isinstance(kept.get("multimask_output", False), bool):
        del kept["multimask_output"]
    if not isinstance(kept.get("all_candidates", False), bool):
        del kept["all_candidates"]
    if not (is_int(kept.get("min_size", 0)) and 0 <= kept.get("min_size", 0) < 2**31):
        del kept["min_size"]
    if not (is_int(kept.get("max_size", 0)) and abs(kept.get("max_size", 0)) < 2**31):
        del kept["max_size"]
    body.clear()
    body.update(kept)
    body["file"] = image
    version, model_id = rng.choice(MODELS)
    if version:
        body["model_version"] = version
    if model_id:
        body["model_id"] = model_id
    body["output_format"] = rng.choice(FORMATS)
    kind = rng.choice(["points", "boxes", "both"])
    if kind in ("points", "both"):
        n = rng.randint(1, 3)
        points = [[rng.randint(0, width - 1), rng.randint(0, height - 1)] for _ in range(n)]
        body["point_coords"] = json.dumps(points)
        if rng.random() < 0.7:
            body["point_labels"] = json.dumps([1] + [rng.randint(0, 1) for _ in range(n - 1)])
    if kind in ("boxes", "both"):
        boxes = []
        for _ in range(1 if kind == "both" else rng.randint(1, 2)):
            x0, y0 = rng.randint(0, width - 2), rng.randint(0, height - 2)
            boxes.append([x0, y0, rng.randint(x0 + 1, width - 1), rng.randint(y0 + 1, height - 1)])
        body["boxes"] = json.dumps(boxes)


# before_call runs in every phase (map_case only on generated cases), just before the request.
@schemathesis.hook
def before_call(context, case, kwargs):
    body = case.body
    if not isinstance(body, dict):
        return
    if case.operation.path == "/segment/automatic":
        cheap_automatic(body)
    elif case.operation.path == "/segment/predict" and rng.random() < 0.5:
        valid_predict(body)
    elif case.operation.path == "/segment/text" and rng.random() < 0.5:
        valid_text(body)


# A tally of (operation, status) per run, printed by scripts/schemathesis/run.
@schemathesis.hook
def after_call(context, case, response):
    import os

    path = os.environ.get("SCHEMATHESIS_TALLY")
    if path:
        with open(path, "a") as f:
            f.write(f"{case.operation.method.upper()} {case.operation.path} {response.status_code}\n")
        slow = os.environ.get("SCHEMATHESIS_SLOW")
        if slow and response.elapsed > 1.0:
            with open(slow, "a") as f:
                f.write(f"{response.elapsed:.1f}s {case.operation.path} {response.status_code} {sorted((k, v if not isinstance(v, bytes) else len(v)) for k, v in (case.body or {}).items()) if isinstance(case.body, dict) else None}\n")
