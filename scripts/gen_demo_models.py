#!/usr/bin/env python3
"""Deterministic generator of small ONNX *demo* models for samgeo-rs.

The demo models have exactly the tensor names, shapes and dtypes of the real
SAM / SAM2 / SAM3 ONNX exports, but contain NO learned weights: they segment
by colour similarity, so that the server and its tests can run end to end
without downloading real checkpoints.  See models/README.md for the contract.

Usage:  python3 scripts/gen_demo_models.py [--out models/demo]

Only `onnx` and `numpy` are used to build the graphs; the same script run twice
writes byte-identical files.
"""

from __future__ import annotations

import argparse
import gzip
import hashlib
import html
import os
import sys
from functools import lru_cache

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

OPSET = 17
IR_VERSION = 8  # ONNX IR for opset 17; loadable by onnxruntime 1.31
F32 = TensorProto.FLOAT
I64 = TensorProto.INT64
U8 = TensorProto.UINT8
BOOL = TensorProto.BOOL

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# The CLIP vocabulary lives next to the project (../shared/data/tokenizer); override with SAMGEO_CLIP_VOCAB.
DEFAULT_VOCAB = os.environ.get(
    "SAMGEO_CLIP_VOCAB",
    os.path.join(os.path.dirname(REPO_ROOT), "shared", "data", "tokenizer", "bpe_simple_vocab_16e6.txt.gz"),
)

# ---------------------------------------------------------------------------
# Behaviour constants (documented in models/README.md)
# ---------------------------------------------------------------------------
# SAM / SAM2: colour distances are in the units of the normalised input
# (SAM: (x - mean) / std with std ~ 58 grey levels; SAM2: ImageNet std ~ 0.226*255).
SAM_K = 20.0  # logit steepness
SAM_T = 1.5  # colour-distance threshold (~87 grey levels, Euclidean over RGB)
SAM_T_FACTORS = [1.0, 0.5, 1.0, 2.0]  # mask index 0..3
SAM_IOU = [0.95, 0.80, 0.90, 0.70]
SAM2_K = 20.0
SAM2_T = 1.5
SAM2_T_FACTORS = [1.0, 0.5, 2.0]  # mask index 0..2
SAM2_IOU = [0.90, 0.80, 0.70]
SAM2_CLAMP = 32.0  # samexporter clamps SAM2 logits to [-32, 32]
# SAM3: units of the in-graph normalisation (x/255 - 0.5) / 0.5, i.e. 1.0 = 127.5 levels.
SAM3_T = 0.5
SAM3_GRID = 288
SAM3_MAX_INSTANCES = 100
SAM3_MIN_CELLS = 4  # connected regions smaller than this (in 288-grid cells) are dropped
SAM3_SCORE = 0.9
SAM3_CC_STEPS_PER_ITER = 4
SAM3_CC_MAX_ITERS = 4096
BIG = 1.0e6

# Colour words understood by the demo SAM3 language encoder (RGB 0..255).
SAM3_COLOURS = {
    "red": (220, 30, 30),
    "green": (40, 160, 40),
    "blue": (30, 60, 200),
    "yellow": (230, 210, 40),
    "white": (245, 245, 245),
    "black": (15, 15, 15),
}
SAM3_EVERYTHING_WORDS = ["everything", "visual"]
CLIP_SOT, CLIP_EOT, CLIP_CONTEXT = 49406, 49407, 32


# ---------------------------------------------------------------------------
# CLIP simple tokenizer (the one SAM3 / open_clip use), enough for demo words
# ---------------------------------------------------------------------------
def _bytes_to_unicode() -> dict[int, str]:
    bs = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + list(
        range(ord("®"), ord("ÿ") + 1)
    )
    cs = bs[:]
    n = 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return dict(zip(bs, [chr(c) for c in cs]))


class ClipTokenizer:
    """Byte-level BPE as in CLIP's simple_tokenizer.py (without ftfy)."""

    def __init__(self, vocab_path: str = DEFAULT_VOCAB):
        with gzip.open(vocab_path, "rt", encoding="utf-8") as f:
            merges = f.read().split("\n")
        merges = [tuple(m.split()) for m in merges[1 : 49152 - 256 - 2 + 1]]
        self.byte_encoder = _bytes_to_unicode()
        vocab = list(self.byte_encoder.values())
        vocab = vocab + [v + "</w>" for v in vocab]
        vocab.extend("".join(m) for m in merges)
        vocab.extend(["<|startoftext|>", "<|endoftext|>"])
        self.encoder = {v: i for i, v in enumerate(vocab)}
        self.bpe_ranks = {m: i for i, m in enumerate(merges)}
        try:
            import regex  # the pattern CLIP uses needs \p{L}

            self.pat = regex.compile(
                r"""<\|startoftext\|>|<\|endoftext\|>|'s|'t|'re|'ve|'m|'ll|'d|[\p{L}]+|[\p{N}]|[^\s\p{L}\p{N}]+""",
                regex.IGNORECASE,
            )
        except ImportError:  # close ASCII approximation
            import re

            self.pat = re.compile(
                r"""<\|startoftext\|>|<\|endoftext\|>|'s|'t|'re|'ve|'m|'ll|'d|[^\W\d_]+|\d|[^\s\w]+|_+""",
                re.IGNORECASE,
            )
        assert self.encoder["<|startoftext|>"] == CLIP_SOT
        assert self.encoder["<|endoftext|>"] == CLIP_EOT

    @lru_cache(maxsize=None)
    def bpe(self, token: str) -> str:
        word = tuple(token[:-1]) + (token[-1] + "</w>",)
        while len(word) > 1:
            pairs = {(word[i], word[i + 1]) for i in range(len(word) - 1)}
            bigram = min(pairs, key=lambda p: self.bpe_ranks.get(p, float("inf")))
            if bigram not in self.bpe_ranks:
                break
            first, second = bigram
            new_word: list[str] = []
            i = 0
            while i < len(word):
                if i < len(word) - 1 and word[i] == first and word[i + 1] == second:
                    new_word.append(first + second)
                    i += 2
                else:
                    new_word.append(word[i])
                    i += 1
            word = tuple(new_word)
        return " ".join(word)

    def encode(self, text: str) -> list[int]:
        text = " ".join(html.unescape(html.unescape(text)).split()).strip().lower()
        ids: list[int] = []
        for tok in self.pat.findall(text):
            tok = "".join(self.byte_encoder[b] for b in tok.encode("utf-8"))
            ids.extend(self.encoder[t] for t in self.bpe(tok).split(" "))
        return ids

    def tokenize(self, text: str, context_length: int = CLIP_CONTEXT) -> np.ndarray:
        """[1, context_length] int64: SOT, ids..., EOT, zero padding (truncated like open_clip)."""
        ids = [CLIP_SOT] + self.encode(text) + [CLIP_EOT]
        if len(ids) > context_length:
            ids = ids[:context_length]
            ids[-1] = CLIP_EOT
        out = np.zeros((1, context_length), dtype=np.int64)
        out[0, : len(ids)] = ids
        return out

    def single_word_id(self, word: str) -> int:
        ids = self.encode(word)
        assert len(ids) == 1, f"{word!r} is not a single CLIP token: {ids}"
        assert ids[0] == self.encoder[word + "</w>"], word
        return ids[0]


# ---------------------------------------------------------------------------
# Tiny graph builder
# ---------------------------------------------------------------------------
class Graph:
    def __init__(self, prefix: str = ""):
        self.prefix = prefix
        self.nodes: list[onnx.NodeProto] = []
        self.inits: list[onnx.TensorProto] = []
        self.inputs: list[onnx.ValueInfoProto] = []
        self.outputs: list[onnx.ValueInfoProto] = []
        self.counter = 0
        self._const_cache: dict[tuple, str] = {}

    def fresh(self, hint: str) -> str:
        self.counter += 1
        return f"{self.prefix}{hint}_{self.counter}"

    def input(self, name: str, elem: int, shape) -> str:
        self.inputs.append(helper.make_tensor_value_info(name, elem, shape))
        return name

    def output(self, src: str, name: str, elem: int, shape) -> None:
        self.op("Identity", src, out=name)
        self.outputs.append(helper.make_tensor_value_info(name, elem, shape))

    def c(self, value, dtype=np.float32) -> str:
        arr = np.asarray(value, dtype=dtype)
        key = (arr.dtype.str, arr.shape, arr.tobytes())
        if key in self._const_cache:
            return self._const_cache[key]
        name = self.fresh("const")
        self.inits.append(numpy_helper.from_array(arr, name))
        self._const_cache[key] = name
        return name

    def ci(self, value) -> str:
        return self.c(value, np.int64)

    def op(self, op_type: str, *inputs: str, out=None, n_out: int = 1, **attrs):
        if out is None:
            outs = [self.fresh(op_type.lower()) for _ in range(n_out)]
        elif isinstance(out, str):
            outs = [out]
        else:
            outs = list(out)
        self.nodes.append(
            helper.make_node(op_type, list(inputs), outs, name=self.fresh("n_" + op_type), **attrs)
        )
        return outs[0] if len(outs) == 1 else outs

    # --- shorthand ---------------------------------------------------------
    def add(self, a, b):
        return self.op("Add", a, b)

    def sub(self, a, b):
        return self.op("Sub", a, b)

    def mul(self, a, b):
        return self.op("Mul", a, b)

    def div(self, a, b):
        return self.op("Div", a, b)

    def cast(self, a, to):
        return self.op("Cast", a, to=to)

    def fbool(self, a):  # bool -> float
        return self.cast(a, F32)

    def rsum(self, x, axes, keepdims=1):
        return self.op("ReduceSum", x, self.ci(axes), keepdims=keepdims)

    def rmax(self, x, axes, keepdims=1):
        return self.op("ReduceMax", x, axes=axes, keepdims=keepdims)

    def rmin(self, x, axes, keepdims=1):
        return self.op("ReduceMin", x, axes=axes, keepdims=keepdims)

    def rmean(self, x, axes, keepdims=1):
        return self.op("ReduceMean", x, axes=axes, keepdims=keepdims)

    def reshape(self, x, shape):
        return self.op("Reshape", x, self.ci(shape))

    def slice(self, x, starts, ends, axes):
        return self.op("Slice", x, self.ci(starts), self.ci(ends), self.ci(axes))

    def unsq(self, x, axes):
        return self.op("Unsqueeze", x, self.ci(axes))

    def zeros_cat(self, colour: str, total_ch: int, hw: int) -> str:
        """Concatenate `colour` [1,3,hw,hw] with zero channels up to total_ch."""
        z = self.op(
            "ConstantOfShape",
            self.ci([1, total_ch - 3, hw, hw]),
            value=numpy_helper.from_array(np.zeros(1, np.float32)),
        )
        return self.op("Concat", colour, z, axis=1)

    def resize(self, x, sizes, mode="linear"):
        return self.op(
            "Resize",
            x,
            "",
            "",
            sizes,
            mode=mode,
            coordinate_transformation_mode="pytorch_half_pixel",
        )

    def graph_proto(self, name: str) -> onnx.GraphProto:
        return helper.make_graph(self.nodes, name, self.inputs, self.outputs, self.inits)


def make_model(g: Graph, name: str, doc: str, order: list[str] | None = None) -> onnx.ModelProto:
    if order is not None:  # output order of the real export (hosts may index outputs by position)
        by_name = {o.name: o for o in g.outputs}
        assert sorted(by_name) == sorted(order), (sorted(by_name), order)
        g.outputs = [by_name[n] for n in order]
    graph = g.graph_proto(name)
    graph.doc_string = doc
    model = helper.make_model(
        graph,
        opset_imports=[helper.make_opsetid("", OPSET)],
        producer_name="samgeo-rs gen_demo_models.py",
        producer_version="1",
        doc_string="DEMO MODEL, NOT SAM: no learned weights. " + doc,
    )
    model.ir_version = IR_VERSION
    model.metadata_props.append(onnx.StringStringEntryProto(key="samgeo_demo", value="true"))
    onnx.checker.check_model(model, full_check=True)
    return model


# ---------------------------------------------------------------------------
# Shared prompt logic for the SAM and SAM2 decoders
# ---------------------------------------------------------------------------
def prompt_colours(g: Graph, col_img: str, gs: int, cell: float, pc: str, pl: str):
    """Reference colours from point/box prompts, per prompt row.

    col_img: [1,3,gs,gs] colour grid (cell = pixel size of one grid cell in the 1024 frame)
    pc: [L,N,2] (x,y) in the 1024 frame, pl: [L,N] labels.
    Returns cpos [L,3], has_prompt bool [L,1], ptcol [L,N,3], neg float [L,N].
    """
    colflat = g.reshape(col_img, [3, gs * gs])
    x = g.op("Gather", pc, g.ci(0), axis=2)  # [L,N]
    y = g.op("Gather", pc, g.ci(1), axis=2)
    lo_c, hi_c = g.c(0.0), g.c(float(gs - 1))
    inv_cell = g.c(1.0 / cell)

    def cell_index(v):
        return g.op("Clip", g.op("Floor", g.mul(v, inv_cell)), lo_c, hi_c)

    idx = g.cast(g.add(g.mul(cell_index(y), g.c(float(gs))), cell_index(x)), I64)  # [L,N]
    ptc = g.op("Gather", colflat, idx, axis=1)  # [3,L,N]
    ptcol = g.op("Transpose", ptc, perm=[1, 2, 0])  # [L,N,3]

    def label_is(v):
        return g.fbool(g.op("Equal", pl, g.c(float(v))))

    pos, neg, tl, br = label_is(1), label_is(0), label_is(2), label_is(3)
    npos = g.rsum(pos, [1])  # [L,1]
    sumpos = g.rsum(g.mul(ptcol, g.unsq(pos, [2])), [1], keepdims=0)  # [L,3]

    one = g.c(1.0)
    ntl, nbr = g.rsum(tl, [1]), g.rsum(br, [1])  # [L,1]
    tlxy = g.div(g.rsum(g.mul(pc, g.unsq(tl, [2])), [1], keepdims=0), g.op("Max", ntl, one))
    brxy = g.div(g.rsum(g.mul(pc, g.unsq(br, [2])), [1], keepdims=0), g.op("Max", nbr, one))
    zero = g.c(0.0)
    has_box = g.fbool(g.op("And", g.op("Greater", ntl, zero), g.op("Greater", nbr, zero)))  # [L,1]
    lo = g.op("Min", tlxy, brxy)  # [L,2]
    hi = g.op("Max", tlxy, brxy)
    span = g.sub(hi, lo)
    q = g.c(0.25)
    qlo = g.add(lo, g.mul(span, q))
    qhi = g.sub(hi, g.mul(span, q))
    ctr = g.mul(g.add(lo, hi), g.c(0.5))
    ccell = cell_index(ctr)  # [L,2]
    j = g.op("Range", g.c(0.0), g.c(float(gs)), g.c(1.0))  # [gs]
    centres = g.add(g.mul(j, g.c(float(cell))), g.c(cell / 2.0))

    def inside(axis):
        a_lo = g.op("Gather", qlo, g.ci([axis]), axis=1)  # [L,1]
        a_hi = g.op("Gather", qhi, g.ci([axis]), axis=1)
        a_c = g.op("Gather", ccell, g.ci([axis]), axis=1)
        within = g.op(
            "And", g.op("GreaterOrEqual", centres, a_lo), g.op("LessOrEqual", centres, a_hi)
        )
        return g.fbool(g.op("Or", within, g.op("Equal", j, a_c)))  # [L,gs]

    inx, iny = inside(0), inside(1)
    # sum_{h,w} iny[h] col[c,h,w] inx[w]
    rows = g.op("MatMul", g.reshape(iny, [-1, 1, 1, gs]), col_img)  # [L,3,1,gs]
    boxsum = g.rsum(g.mul(rows, g.reshape(inx, [-1, 1, 1, gs])), [2, 3], keepdims=0)  # [L,3]
    cnt = g.mul(g.rsum(iny, [1]), g.rsum(inx, [1]))  # [L,1]
    boxmean = g.div(boxsum, g.op("Max", cnt, one))
    denom = g.add(npos, has_box)  # [L,1]
    cpos = g.div(g.add(sumpos, g.mul(boxmean, has_box)), g.op("Max", denom, one))  # [L,3]
    has_prompt = g.op("Greater", denom, g.c(0.5))  # [L,1]
    return cpos, has_prompt, ptcol, neg


def colour_distances(g: Graph, field: str, cols: str) -> str:
    """field [3,P], cols [L,M,3] -> Euclidean distances [L,M,P] (via a matmul)."""
    fsq = g.rsum(g.mul(field, field), [0])  # [1,P]
    csq = g.rsum(g.mul(cols, cols), [2])  # [L,M,1]
    dot = g.op("MatMul", cols, field)  # [L,M,P]
    d2 = g.add(g.sub(fsq, g.mul(dot, g.c(2.0))), csq)
    return g.op("Sqrt", g.op("Max", d2, g.c(0.0)))


def prompt_logits(g, field, cpos, has_prompt, ptcol, neg, k, t, factors):
    """Logits [L, len(factors), P] of the colour rule."""
    dpos = colour_distances(g, field, g.unsq(cpos, [1]))  # [L,1,P]
    dneg_all = colour_distances(g, field, ptcol)  # [L,N,P]
    dneg_all = g.add(dneg_all, g.unsq(g.mul(g.sub(g.c(1.0), neg), g.c(BIG)), [2]))
    big = g.op("Expand", g.c(BIG), g.op("Shape", dpos))  # guards N == 0
    dneg = g.rmin(g.op("Concat", dneg_all, big, axis=1), [1])  # [L,1,P]
    cond = g.op("And", g.op("Less", dpos, dneg), g.unsq(has_prompt, [2]))  # [L,1,P]
    ts = g.c(np.array(factors, np.float32).reshape(1, -1, 1) * t)
    poslog = g.mul(g.sub(ts, dpos), g.c(k))  # [L,nT,P]
    return g.op("Where", cond, poslog, g.c(-k * t))


# ---------------------------------------------------------------------------
# SAM
# ---------------------------------------------------------------------------
def sam_encoder() -> onnx.ModelProto:
    g = Graph()
    img = g.input("image", F32, [1, 3, 1024, 1024])
    col = g.op("AveragePool", img, kernel_shape=[16, 16], strides=[16, 16])  # [1,3,64,64]
    g.output(g.zeros_cat(col, 256, 64), "image_embeddings", F32, [1, 256, 64, 64])
    return make_model(
        g, "sam_demo_encoder", "image_embeddings[:, 0:3] = mean of each 16x16 patch of the normalised input; other channels 0."
    )


def sam_decoder(fast: bool = False) -> onnx.ModelProto:
    """The official export's signature, or with `fast` the one `export-models --decoder fast`
    writes: L prompt rows per call, no `orig_im_size`, only low_res_masks + iou_predictions
    (the same logits per row)."""
    g = Graph()
    rows = "num_prompts" if fast else 1
    emb = g.input("image_embeddings", F32, [1, 256, 64, 64])
    pc = g.input("point_coords", F32, [rows, "num_points", 2])
    pl = g.input("point_labels", F32, [rows, "num_points"])
    g.input("mask_input", F32, [1, 1, 256, 256])  # accepted, ignored by the demo
    g.input("has_mask_input", F32, [1])  # accepted, ignored by the demo
    osz = None if fast else g.input("orig_im_size", F32, [2])

    col64 = g.slice(emb, [0], [3], [1])  # [1,3,64,64]
    cpos, has_prompt, ptcol, neg = prompt_colours(g, col64, 64, 16.0, pc, pl)
    col256 = g.resize(col64, g.ci([1, 3, 256, 256]))  # bilinear 64 -> 256
    field = g.reshape(col256, [3, 256 * 256])
    logits = prompt_logits(g, field, cpos, has_prompt, ptcol, neg, SAM_K, SAM_T, SAM_T_FACTORS)
    if fast:
        nl = g.slice(g.op("Shape", pl), [0], [1], [0])
        iou = g.op("Expand", g.c([SAM_IOU]), g.op("Concat", nl, g.ci([4]), axis=0))
        g.output(iou, "iou_predictions", F32, [rows, 4])
        low = g.reshape(logits, [0, 4, 256, 256])
        g.output(low, "low_res_masks", F32, [rows, 4, 256, 256])
        return make_model(g, "sam_demo_decoder_fast", "Colour-similarity segmentation on the 64x64 embedding colours, per prompt row (the fast decoder's signature).")
    low = g.reshape(logits, [1, 4, 256, 256])
    g.output(low, "low_res_masks", F32, [1, 4, 256, 256])

    # Official SamOnnxModel.mask_postprocessing
    up = g.resize(low, g.ci([1, 4, 1024, 1024]))
    scale = g.div(g.c(1024.0), g.rmax(osz, [0], keepdims=0))
    pre = g.cast(g.op("Floor", g.add(g.mul(osz, scale), g.c(0.5))), I64)  # [2]
    crop = g.op("Slice", up, g.ci([0, 0]), pre, g.ci([2, 3]))
    sizes = g.op("Concat", g.ci([1, 4]), g.cast(osz, I64), axis=0)
    masks = g.resize(crop, sizes)
    g.output(masks, "masks", F32, [1, 4, "orig_height", "orig_width"])
    g.output(g.c([SAM_IOU]), "iou_predictions", F32, [1, 4])
    return make_model(g, "sam_demo_decoder", "Colour-similarity segmentation on the 64x64 embedding colours.",
        order=["masks", "iou_predictions", "low_res_masks"],
    )


# ---------------------------------------------------------------------------
# SAM2
# ---------------------------------------------------------------------------
def sam2_encoder() -> onnx.ModelProto:
    g = Graph()
    img = g.input("image", F32, [1, 3, 1024, 1024])
    c256 = g.op("AveragePool", img, kernel_shape=[4, 4], strides=[4, 4])
    c128 = g.op("AveragePool", c256, kernel_shape=[2, 2], strides=[2, 2])
    c64 = g.op("AveragePool", c128, kernel_shape=[2, 2], strides=[2, 2])
    g.output(g.zeros_cat(c256, 32, 256), "high_res_feats_0", F32, [1, 32, 256, 256])
    g.output(g.zeros_cat(c128, 64, 128), "high_res_feats_1", F32, [1, 64, 128, 128])
    g.output(g.zeros_cat(c64, 256, 64), "image_embed", F32, [1, 256, 64, 64])
    return make_model(
        g, "sam2_demo_encoder", "Channels 0:3 = mean colour per 4x4 / 8x8 / 16x16 patch; other channels 0."
    )


def sam2_decoder() -> onnx.ModelProto:
    g = Graph()
    g.input("image_embed", F32, [1, 256, 64, 64])  # accepted, unused (colours come from high_res_feats_0)
    hr0 = g.input("high_res_feats_0", F32, [1, 32, 256, 256])
    g.input("high_res_feats_1", F32, [1, 64, 128, 128])  # accepted, unused
    pc = g.input("point_coords", F32, ["num_labels", "num_points", 2])
    pl = g.input("point_labels", F32, ["num_labels", "num_points"])
    g.input("mask_input", F32, ["num_labels", 1, 256, 256])  # accepted, ignored
    g.input("has_mask_input", F32, ["num_labels"])  # accepted, ignored

    col = g.slice(hr0, [0], [3], [1])  # [1,3,256,256]
    cpos, has_prompt, ptcol, neg = prompt_colours(g, col, 256, 4.0, pc, pl)
    field = g.reshape(col, [3, 256 * 256])
    logits = prompt_logits(g, field, cpos, has_prompt, ptcol, neg, SAM2_K, SAM2_T, SAM2_T_FACTORS)
    logits = g.op("Clip", logits, g.c(-SAM2_CLAMP), g.c(SAM2_CLAMP))
    g.output(g.reshape(logits, [0, 3, 256, 256]), "masks", F32, ["num_labels", 3, 256, 256])
    nl = g.slice(g.op("Shape", pl), [0], [1], [0])
    iou = g.op("Expand", g.c([SAM2_IOU]), g.op("Concat", nl, g.ci([3]), axis=0))
    g.output(iou, "iou_predictions", F32, ["num_labels", 3])
    return make_model(
        g, "sam2_demo_decoder", "Colour-similarity segmentation on the 256x256 high_res_feats_0 colours, per prompt row."
    )


# ---------------------------------------------------------------------------
# SAM3
# ---------------------------------------------------------------------------
SAM3_SHAPES = [288, 144, 72]


def sam3_image_encoder() -> onnx.ModelProto:
    g = Graph()
    img = g.input("image", U8, [3, 1008, 1008])
    x = g.sub(g.div(g.cast(img, F32), g.c(127.5)), g.c(1.0))  # (x/255 - 0.5)/0.5
    x = g.unsq(x, [0])  # [1,3,1008,1008]
    # Exact area mean over 3.5x3.5-pixel cells: 2x nearest upsample, then 7x7 average.
    x2 = g.op("Resize", x, "", g.c([1.0, 1.0, 2.0, 2.0]), mode="nearest", coordinate_transformation_mode="asymmetric", nearest_mode="floor")
    c288 = g.op("AveragePool", x2, kernel_shape=[7, 7], strides=[7, 7])
    c144 = g.op("AveragePool", x, kernel_shape=[7, 7], strides=[7, 7])
    c72 = g.op("AveragePool", c144, kernel_shape=[2, 2], strides=[2, 2])
    for i, s in enumerate(SAM3_SHAPES):
        z = g.op(
            "ConstantOfShape",
            g.ci([1, 256, s, s]),
            value=numpy_helper.from_array(np.zeros(1, np.float32)),
        )
        g.output(z, f"vision_pos_enc_{i}", F32, [1, 256, s, s])
    for i, (s, c) in enumerate(zip(SAM3_SHAPES, [c288, c144, c72])):
        g.output(g.zeros_cat(c, 256, s), f"backbone_fpn_{i}", F32, [1, 256, s, s])
    return make_model(
        g, "sam3_demo_image_encoder", "backbone_fpn_k[:, 0:3] = mean normalised colour per cell (288/144/72 grids); everything else 0."
    )


SAM3_FEATS = 5  # r, g, b, is_colour, is_everything


def sam3_word_table(tok: ClipTokenizer):
    ids, rows = [], []
    for word, rgb in SAM3_COLOURS.items():
        ids.append(tok.single_word_id(word))
        rows.append([v / 127.5 - 1.0 for v in rgb] + [1.0, 0.0])
    for word in SAM3_EVERYTHING_WORDS:
        ids.append(tok.single_word_id(word))
        rows.append([0.0, 0.0, 0.0, 0.0, 1.0])
    return np.array(ids, np.int64), np.array(rows, np.float32)


def sam3_language_encoder(tok: ClipTokenizer) -> onnx.ModelProto:
    g = Graph()
    tokens = g.input("tokens", I64, [1, 32])
    ids, table = sam3_word_table(tok)
    onehot = g.fbool(g.op("Equal", g.unsq(tokens, [2]), g.ci(ids)))  # [1,32,W]
    feats = g.op("MatMul", onehot, g.c(table))  # [1,32,5]
    feats = g.op("Transpose", feats, perm=[1, 0, 2])  # [32,1,5]
    g.output(g.op("Equal", tokens, g.ci(0)), "text_attention_mask", BOOL, [1, 32])
    for name, ch in [("text_memory", 256), ("text_embeds", 1024)]:
        padded = g.op("Pad", feats, g.ci([0, 0, 0, 0, 0, ch - SAM3_FEATS]))
        g.output(padded, name, F32, [32, 1, ch])
    return make_model(
        g, "sam3_demo_language_encoder", "Per token: channels 0:5 = (r, g, b, is_colour_word, is_everything_word)."
    )


def sam3_cc_loop(g: Graph, fg: str, init: str) -> str:
    """Connected components (8-connectivity) by max-label propagation in a Loop."""
    s = SAM3_GRID
    b = Graph(prefix="cc_")
    b.input("cc_iter", I64, [])
    b.input("cc_cond_in", BOOL, [])
    lab_in = b.input("cc_lab_in", F32, [1, 1, s, s])
    x = lab_in
    for _ in range(SAM3_CC_STEPS_PER_ITER):
        x = b.mul(b.op("MaxPool", x, kernel_shape=[3, 3], pads=[1, 1, 1, 1], strides=[1, 1]), fg)
    changed = b.op("Greater", b.rmax(b.op("Abs", b.sub(x, lab_in)), [0, 1, 2, 3], keepdims=0), b.c(0.0))
    b.output(changed, "cc_cond_out", BOOL, [])
    b.output(x, "cc_lab_out", F32, [1, 1, s, s])
    body = b.graph_proto("cc_body")
    return g.op(
        "Loop", g.ci(SAM3_CC_MAX_ITERS), g.c(True, np.bool_), init, body=body
    )


def sam3_decoder() -> onnx.ModelProto:
    g = Graph()
    s = SAM3_GRID
    p = s * s
    oh = g.input("original_height", I64, [])
    ow = g.input("original_width", I64, [])
    for i, sz in enumerate(SAM3_SHAPES):
        g.input(f"vision_pos_enc_{i}", F32, [1, 256, sz, sz])  # accepted, unused
    fpn0 = g.input("backbone_fpn_0", F32, [1, 256, s, s])
    g.input("backbone_fpn_1", F32, [1, 256, 144, 144])  # accepted, unused
    g.input("backbone_fpn_2", F32, [1, 256, 72, 72])  # accepted, unused
    lmask = g.input("language_mask", BOOL, [1, 32])
    lfeat = g.input("language_features", F32, [32, 1, 256])
    g.input("language_embeds", F32, [32, 1, 1024])  # accepted, unused
    bcoords = g.input("box_coords", F32, ["num_boxes", 1, 4])
    blabels = g.input("box_labels", I64, ["num_boxes", 1])
    bmasks = g.input("box_masks", BOOL, [1, "num_boxes"])

    one, zero, half = g.c(1.0), g.c(0.0), g.c(0.5)
    col = g.slice(fpn0, [0], [3], [1])  # [1,3,s,s]
    field = g.reshape(col, [3, p])

    # --- text prompt ------------------------------------------------------
    feat = g.reshape(g.slice(lfeat, [0], [SAM3_FEATS], [2]), [32, SAM3_FEATS])
    valid = g.reshape(g.fbool(g.op("Not", lmask)), [32, 1])
    feat = g.mul(feat, valid)
    wcol = g.slice(feat, [3], [4], [1])  # [32,1]
    ncol = g.rsum(wcol, [0])  # [1,1]
    ctext = g.div(g.rsum(g.mul(g.slice(feat, [0], [3], [1]), wcol), [0]), g.op("Max", ncol, g.c(1e-6)))  # [1,3]
    text_found = g.op("Greater", ncol, half)  # [1,1]
    every = g.op("Greater", g.rmax(g.slice(feat, [4], [5], [1]), [0]), half)  # [1,1]

    # --- box exemplars (positive, unmasked boxes) ------------------------
    bc = g.reshape(bcoords, [-1, 4])  # [B,4] cx,cy,w,h normalised
    bl = g.reshape(blabels, [-1, 1])  # [B,1]
    bm = g.reshape(bmasks, [-1, 1])  # [B,1]
    bvalid = g.fbool(g.op("And", g.op("Not", bm), g.op("Equal", bl, g.ci(1))))  # [B,1]
    j = g.op("Range", zero, g.c(float(s)), one)  # [s]
    u = g.div(g.add(j, half), g.c(float(s)))  # cell centres, normalised

    def inside(axis):
        cen = g.slice(bc, [axis], [axis + 1], [1])  # [B,1]
        quarter = g.mul(g.slice(bc, [axis + 2], [axis + 3], [1]), g.c(0.25))
        within = g.op(
            "And",
            g.op("GreaterOrEqual", u, g.sub(cen, quarter)),
            g.op("LessOrEqual", u, g.add(cen, quarter)),
        )
        ccell = g.op("Clip", g.op("Floor", g.mul(cen, g.c(float(s)))), zero, g.c(float(s - 1)))
        return g.fbool(g.op("Or", within, g.op("Equal", j, ccell)))  # [B,s]

    inx, iny = inside(0), inside(1)
    rows = g.op("MatMul", g.reshape(iny, [-1, 1, 1, s]), col)  # [B,3,1,s]
    boxsum = g.rsum(g.mul(rows, g.reshape(inx, [-1, 1, 1, s])), [2, 3], keepdims=0)  # [B,3]
    cnt = g.mul(g.rsum(iny, [1]), g.rsum(inx, [1]))  # [B,1]
    csum = g.rsum(g.mul(boxsum, bvalid), [0])  # [1,3]
    ctot = g.rsum(g.mul(cnt, bvalid), [0])  # [1,1]
    cbox = g.div(csum, g.op("Max", ctot, one))
    has_box = g.op("Greater", g.rsum(bvalid, [0]), half)  # [1,1]

    ref = g.op("Where", has_box, cbox, ctext)  # [1,3]
    colour_mode = g.op("Or", has_box, text_found)  # [1,1]
    every_mode = g.op("And", g.op("Not", colour_mode), every)

    # background colour: mean of the four 8x8-cell corner blocks
    corners = []
    for (r0, r1) in [(0, 8), (s - 8, s)]:
        for (c0, c1) in [(0, 8), (s - 8, s)]:
            corners.append(g.rmean(g.slice(col, [r0, c0], [r1, c1], [2, 3]), [2, 3], keepdims=0))
    bg = g.rmean(g.op("Concat", *corners, axis=0), [0])  # [1,3]

    dref = g.reshape(colour_distances(g, field, g.unsq(ref, [0])), [1, p])
    dbg = g.reshape(colour_distances(g, field, g.unsq(bg, [0])), [1, p])
    t = g.c(SAM3_T)
    fg = g.op(
        "Or",
        g.op("And", colour_mode, g.op("Less", dref, t)),
        g.op("And", every_mode, g.op("Greater", dbg, t)),
    )  # [1,P]
    fgf = g.reshape(g.fbool(fg), [1, 1, s, s])

    # --- connected components -------------------------------------------
    ids0 = g.reshape(g.op("Range", one, g.c(float(p + 1)), one), [1, 1, s, s])
    labels = sam3_cc_loop(g, fgf, g.mul(ids0, fgf))
    lab = g.cast(g.reshape(labels, [p]), I64)
    uy, _, _, ucnt = g.op("Unique", lab, sorted=1, n_out=4)
    keep = g.op("And", g.op("Greater", uy, g.ci(0)), g.op("GreaterOrEqual", ucnt, g.ci(SAM3_MIN_CELLS)))
    ids = g.op("Compress", uy, keep, axis=0)
    areas = g.op("Compress", ucnt, keep, axis=0)
    k = g.op("Min", g.op("Shape", ids), g.ci([SAM3_MAX_INSTANCES]))
    _, order = g.op("TopK", areas, k, axis=0, largest=1, sorted=1, n_out=2)
    sel = g.op("Gather", ids, order, axis=0)  # [K]
    onehot = g.fbool(g.op("Equal", g.reshape(lab, [1, 1, s, s]), g.reshape(sel, [-1, 1, 1, 1])))  # [K,1,s,s]
    hw = g.op("Concat", g.reshape(oh, [1]), g.reshape(ow, [1]), axis=0)
    sizes = g.op("Concat", g.op("Shape", sel), g.ci([1]), hw, axis=0)
    up = g.resize(onehot, sizes)  # squash back to the original size
    masks = g.op("Greater", up, half)  # [K,1,H,W]
    g.output(masks, "masks", BOOL, ["num_instances", 1, "original_height", "original_width"])

    # boxes from the masks (x0, y0, x1, y1), pixel-edge convention (x1 = last column + 1)
    mf = g.fbool(masks)
    colany = g.op("Greater", g.rmax(mf, [1, 2], keepdims=0), zero)  # [K,W]
    rowany = g.op("Greater", g.rmax(mf, [1, 3], keepdims=0), zero)  # [K,H]

    def extent(any_, length):
        r = g.op("Range", zero, g.cast(length, F32), one)
        lo = g.rmin(g.op("Where", any_, r, g.c(BIG)), [1], keepdims=0)
        hi = g.rmax(g.op("Where", any_, g.add(r, one), g.c(-1.0)), [1], keepdims=0)
        return lo, hi

    x0, x1 = extent(colany, ow)
    y0, y1 = extent(rowany, oh)
    boxes = g.op("Concat", *[g.unsq(v, [1]) for v in (x0, y0, x1, y1)], axis=1)
    g.output(boxes, "boxes", F32, ["num_instances", 4])
    g.output(g.op("Expand", g.c(SAM3_SCORE), g.op("Shape", sel)), "scores", F32, ["num_instances"])
    return make_model(
        g, "sam3_demo_decoder", "Colour matching on the 288x288 backbone_fpn_0 colours; one instance per 8-connected region.",
        order=["boxes", "scores", "masks"],
    )


# ---------------------------------------------------------------------------
MODELS = [
    ("sam_encoder.onnx", lambda tok: sam_encoder()),
    ("sam_decoder.onnx", lambda tok: sam_decoder()),
    ("sam_decoder_fast.onnx", lambda tok: sam_decoder(fast=True)),
    ("sam2_encoder.onnx", lambda tok: sam2_encoder()),
    ("sam2_decoder.onnx", lambda tok: sam2_decoder()),
    ("sam3_image_encoder.onnx", lambda tok: sam3_image_encoder()),
    ("sam3_language_encoder.onnx", sam3_language_encoder),
    ("sam3_decoder.onnx", lambda tok: sam3_decoder()),
]


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default=os.path.join(REPO_ROOT, "models", "demo"))
    ap.add_argument("--vocab", default=DEFAULT_VOCAB, help="CLIP bpe_simple_vocab_16e6.txt.gz")
    ap.add_argument("--only", nargs="*", help="generate only these files")
    args = ap.parse_args(argv)
    tok = ClipTokenizer(args.vocab)
    os.makedirs(args.out, exist_ok=True)
    for fname, build in MODELS:
        if args.only and fname not in args.only:
            continue
        data = build(tok).SerializeToString(deterministic=True)
        path = os.path.join(args.out, fname)
        with open(path, "wb") as f:
            f.write(data)
        print(f"wrote {path}  {len(data):>8} bytes  sha256={hashlib.sha256(data).hexdigest()[:16]}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
