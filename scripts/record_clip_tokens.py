#!/usr/bin/env python3
"""Records CLIP token ids from the reference tokenizer for the Rust parity test.

The reference is open_clip's `SimpleTokenizer` (open_clip/tokenizer.py), the tokenizer SAM3's text
encoder was trained with. It is imported without torch: a stub `torch` module stands in, and the
ids are taken from `SimpleTokenizer.encode` and laid out exactly as `SimpleTokenizer.__call__`
does (SOT, ids..., EOT, zero padding; too long: truncated and the last id replaced by EOT).

    pip download open_clip_torch --no-deps -d /tmp/oc && unzip -qo /tmp/oc/*.whl -d /tmp/oc/ext
    pip install ftfy regex
    python3 scripts/record_clip_tokens.py --open-clip /tmp/oc/ext > tests/fixtures/clip_tokens.json

The vocabulary is the one shipped inside the open_clip wheel unless --vocab is given; it is the same
file as ../shared/data/tokenizer/bpe_simple_vocab_16e6.txt.gz (md5 933b7abbbbde62c36f02f0e6ccde464f).
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import sys
import types

CONTEXT_LENGTH = 32

PHRASES = [
    "red",
    "green",
    "blue",
    "yellow",
    "white",
    "black",
    "everything",
    "visual",
    "building",
    "solar panel",
    "swimming pool",
    "a red car",
    "Red Roof",
    "SOLAR PANELS",
    "roof-top!",
    "2 cars",
    "12 cars in 2024",
    "tree's shadow",
    "tree\u2019s shadow",
    "they're we've I'm you'll he'd",
    "caf\u00e9",
    "cafe\u0301",
    "na\u00efve r\u00e9sum\u00e9 stra\u00dfe",
    "   extra    spaces\tand\nnewlines   ",
    "",
    " ",
    "fish &amp; chips",
    "&lt;tag&gt; &#39;quoted&#39;",
    "\uff32\uff25\uff24 car",
    "\ufb01eld of \ufb02owers",
    "\u201cquoted\u201d words",
    "building_footprint",
    "e-mail @ home.com #1",
    "\u6c34\u6ce5\u5efa\u7b51",
    "\u0437\u0434\u0430\u043d\u0438\u0435",
    "emoji \U0001f3e0 house",
    "asphalt parking lot with many parked cars and trucks next to a large warehouse building "
    "surrounded by trees, grass, a river and some small houses with red roofs",
    "supercalifragilisticexpialidocious",
    "wind turbine, greenhouse; container-ship...",
    "100m\u00b2 plot",
]


def load_reference(open_clip_dir: str):
    stub = types.ModuleType("torch")
    stub.LongTensor = object
    stub.Tensor = object
    sys.modules.setdefault("torch", stub)
    spec = importlib.util.spec_from_file_location(
        "open_clip_tokenizer", f"{open_clip_dir}/open_clip/tokenizer.py"
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--open-clip", required=True, help="folder holding the unpacked open_clip package")
    parser.add_argument("--vocab", help="bpe_simple_vocab_16e6.txt.gz (default: the one in open_clip)")
    args = parser.parse_args()
    module = load_reference(args.open_clip)
    tokenizer = module.SimpleTokenizer(args.vocab) if args.vocab else module.SimpleTokenizer()
    sot, eot = tokenizer.sot_token_id, tokenizer.eot_token_id
    assert (sot, eot) == (49406, 49407), (sot, eot)
    records = []
    for text in PHRASES:
        ids = [sot] + tokenizer.encode(text) + [eot]
        if len(ids) > CONTEXT_LENGTH:
            ids = ids[:CONTEXT_LENGTH]
            ids[-1] = eot
        ids = ids + [0] * (CONTEXT_LENGTH - len(ids))
        records.append({"text": text, "tokens": ids})
    json.dump(records, sys.stdout, ensure_ascii=False, indent=1)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()
