#!/usr/bin/env python3
"""Write tests/fixtures/adversarial/: the adversarial corpus of issue 11.

Plain python3, no third-party packages. Run from anywhere:

    python3 tools/make_adversarial_corpus.py            # rewrite tests/fixtures/adversarial/
    python3 tools/make_adversarial_corpus.py --check    # exit 1 if the committed corpus differs

The corpus is small on purpose. A tampered package is stored as an *overlay*: only the
files that differ from `models/demo` (usually `vtde.json`); the test copies
`models/demo` into a temporary directory and lays the overlay over it, so the large
`.onnx.data` files are never committed twice. Tampered checkpoints are overlays of
`tests/fixtures/vit-bert-tiny/checkpoint` alike. Broken images are committed as they
are. What cannot be committed portably (file names that are not UTF-8, FIFOs, sockets,
symbolic links, a directory in place of a file) is made at test time by the steps each
case lists. `cases.json` lists every case: the issue line it covers, how it is set up,
the `vtde` arguments, the expected exit code, what stderr must and must not say, and
what the outputs must hold. `crates/vtde-cli/tests/adversarial.rs` runs them all.

Every tampering applies one problem only: the script checks, for each package overlay,
that every file the manifest hashes still has its sha256 except the one file the case
is about (the manifest itself is not hashed by anything, so editing it needs no
re-hashing).
"""

import argparse
import copy
import filecmp
import hashlib
import json
import math
import os
import random
import shutil
import struct
import sys
import tempfile
import zlib

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DEMO = os.path.join(ROOT, "models", "demo")
EXAMPLES = os.path.join(ROOT, "models", "examples")
CHECKPOINT = os.path.join(ROOT, "tests", "fixtures", "vit-bert-tiny", "checkpoint")
OUT = os.path.join(ROOT, "tests", "fixtures", "adversarial")

# Texts no stderr may hold, in any case: Rust's panic message ("thread '...' panicked at
# src/x.rs:1:2:") and backtrace, or its hint to set RUST_BACKTRACE. Not the bare word
# "panicked": vtde's own one-line error for a caught decoder panic says "the decoder
# panicked on this file", and that line is what the issue asks for.
ALWAYS_FORBIDDEN = ["panicked at", "RUST_BACKTRACE", "stack backtrace"]

LABELS = ["--labels", "circle", "square", "triangle"]


def sha256(data):
    return hashlib.sha256(data).hexdigest()


def read(path):
    with open(path, "rb") as f:
        return f.read()


def write(path, data):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "wb") as f:
        f.write(data)


def dump_json(value):
    return (json.dumps(value, indent=2, allow_nan=False) + "\n").encode()


# --- Packages: overlays of models/demo -----------------------------------------------


def demo_manifest():
    return json.loads(read(os.path.join(DEMO, "vtde.json")))


def package_files(overlay):
    """The bytes of every file of the package `overlay` makes of the demo."""
    files = {n: read(os.path.join(DEMO, n)) for n in os.listdir(DEMO)}
    files.update(overlay)
    return files


def check_only_intended(name, overlay, broken):
    """Every hashed file of the overlaid package matches its sha256, except `broken`."""
    files = package_files(overlay)
    m = json.loads(files["vtde.json"])
    declared = {m["text"]["tokenizer"]: m.get("tokenizer_sha256")}
    for g in m["graphs"].values():
        declared[g["file"]] = g["sha256"]
        if g.get("weights"):
            declared[g["weights"]["file"]] = g["weights"]["sha256"]
    for f, digest in declared.items():
        ok = f in files and sha256(files[f]) == digest
        if f in broken:
            if ok:
                sys.exit(f"{name}: {f} was meant to be broken but still matches")
        elif not ok:
            sys.exit(f"{name}: {f} does not match its sha256: re-hash it")


def manifest_overlay(edit):
    m = demo_manifest()
    edit(m)
    return {"vtde.json": dump_json(m)}


def set_side(m, side):
    m["image"]["height"] = side
    m["image"]["width"] = side
    m["image"]["resize"]["rule"] = {"kind": "exact", "height": side, "width": side}


def packages():
    """name -> (overlay files, files meant to fail their sha256)."""
    out = {}

    def null_weights(graph):
        def edit(m):
            m["graphs"][graph]["weights"] = None

        return edit

    out["weights-null-vision"] = (manifest_overlay(null_weights("vision")), set())
    # The projection's weights declared null and scrambled (every byte + 1): before,
    # they were loaded unhashed and scored with exit 0. 32 KiB, so committed.
    scrambled = bytes((b + 1) & 0xFF for b in read(os.path.join(DEMO, "projection.onnx.data")))
    overlay = manifest_overlay(null_weights("projection"))
    overlay["projection.onnx.data"] = scrambled
    out["weights-null-projection-scrambled"] = (overlay, set())

    tokenizer = read(os.path.join(DEMO, "tokenizer.json")).decode()
    tampered = tokenizer.replace('"[UNK]"', '"[UNX]"', 1)
    assert tampered != tokenizer
    out["tokenizer-tampered"] = ({"tokenizer.json": tampered.encode()}, {"tokenizer.json"})
    out["tokenizer-not-json"] = ({"tokenizer.json": b"{ not a tokenizer"}, {"tokenizer.json"})

    for side in (100000, 4294967295):
        out[f"image-size-{side}"] = (manifest_overlay(lambda m, s=side: set_side(m, s)), set())
    for scale, tag in ((88.8, "88.8"), (100.0, "100"), (1e30, "1e30")):
        out[f"logit-scale-{tag}"] = (
            manifest_overlay(lambda m, s=scale: m.__setitem__("logit_scale", s)),
            set(),
        )
    out["rescale-factor-1e38"] = (
        manifest_overlay(lambda m: m["image"].__setitem__("rescale_factor", 1e38)),
        set(),
    )

    def no_resize(m):
        m["image"]["resize"] = None
        m["image"]["center_crop"] = None

    out["no-resize-no-crop"] = (manifest_overlay(no_resize), set())
    out["normalize-std-zero"] = (
        manifest_overlay(lambda m: m["image"]["normalize"].__setitem__("std", [0.5, 0.0, 0.5])),
        set(),
    )
    for name, (overlay, broken) in out.items():
        check_only_intended(name, overlay, broken)
    return out


# --- Checkpoints: overlays of tests/fixtures/vit-bert-tiny/checkpoint ----------------


def set_safetensors_f32(data, tensor, value):
    """`data` (a safetensors file) with the first value of f32 `tensor` set to `value`."""
    (n,) = struct.unpack("<Q", data[:8])
    header = json.loads(data[8 : 8 + n])
    info = header[tensor]
    assert info["dtype"] == "F32", info
    at = 8 + n + info["data_offsets"][0]
    out = bytearray(data)
    out[at : at + 4] = struct.pack("<f", value)
    return bytes(out)


def checkpoints():
    out = {}
    weights = read(os.path.join(CHECKPOINT, "model.safetensors"))
    config = json.loads(read(os.path.join(CHECKPOINT, "config.json")))
    processor = json.loads(read(os.path.join(CHECKPOINT, "processor_config.json")))

    out["nan-logit-scale"] = {
        "model.safetensors": set_safetensors_f32(weights, "logit_scale", math.nan)
    }
    out["logit-scale-100"] = {
        "model.safetensors": set_safetensors_f32(weights, "logit_scale", 100.0)
    }

    def config_overlay(edit):
        c = copy.deepcopy(config)
        edit(c)
        return {"config.json": dump_json(c)}

    def processor_overlay(edit):
        p = copy.deepcopy(processor)
        edit(p["image_processor"])
        return {"processor_config.json": dump_json(p)}

    out["negative-layer-norm-eps"] = config_overlay(
        lambda c: c["text_config"].__setitem__("layer_norm_eps", -1e-12)
    )
    out["zero-num-hidden-layers"] = config_overlay(
        lambda c: c["vision_config"].__setitem__("num_hidden_layers", 0)
    )
    out["zero-image-std"] = processor_overlay(lambda p: p.__setitem__("image_std", [0.5, 0.0, 0.5]))
    out["rescale-factor-1e38"] = processor_overlay(lambda p: p.__setitem__("rescale_factor", 1e38))
    return out


# --- Broken images ----------------------------------------------------------------------


def png_chunk(kind, body):
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))


def png(width, height, rows=b""):
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + png_chunk(b"IHDR", ihdr)
        + png_chunk(b"IDAT", zlib.compress(rows))
        + png_chunk(b"IEND", b"")
    )


def tiled_planar_tiff(width, height, tile):
    """An uncompressed, tiled, planar (one plane per channel) 16-bit RGB TIFF whose tiles
    overhang the image: the `tiff` crate 0.11 panics on it (an assertion in its chunk
    decoder), as on Pillow's `tiff_tiled_planar_16bit_RGB.tiff`; PIL decodes it."""
    spp, bits = 3, 16
    across, down = -(-width // tile), -(-height // tile)
    ntiles = across * down * spp
    tile_bytes = tile * tile * bits // 8
    entries = [
        (256, 4, 1, width), (257, 4, 1, height), (258, 3, 3, None), (259, 3, 1, 1),
        (262, 3, 1, 2), (277, 3, 1, spp), (284, 3, 1, 2), (322, 3, 1, tile),
        (323, 3, 1, tile), (324, 4, ntiles, None), (325, 4, ntiles, None),
    ]
    ifd = 8
    bps_at = ifd + 2 + 12 * len(entries) + 4
    offsets_at = bps_at + 6
    counts_at = offsets_at + 4 * ntiles
    data_at = counts_at + 4 * ntiles
    out = bytearray(b"II*\x00" + struct.pack("<I", ifd) + struct.pack("<H", len(entries)))
    pointers = {258: bps_at, 324: offsets_at, 325: counts_at}
    for tag, kind, count, value in entries:
        if tag in pointers:
            v = struct.pack("<I", pointers[tag])
        elif kind == 3:
            v = struct.pack("<HH", value, 0)
        else:
            v = struct.pack("<I", value)
        out += struct.pack("<HHI", tag, kind, count) + v
    out += struct.pack("<I", 0) + struct.pack("<3H", bits, bits, bits)
    out += struct.pack(f"<{ntiles}I", *(data_at + i * tile_bytes for i in range(ntiles)))
    out += struct.pack(f"<{ntiles}I", *([tile_bytes] * ntiles))
    for i in range(ntiles):
        out += bytes(((i * 37 + j) * 13) & 0xFF for j in range(tile_bytes))
    return bytes(out)


def images():
    red = read(os.path.join(EXAMPLES, "red_circle.png"))
    rng = random.Random(11)
    return {
        # The first 60% of a valid PNG.
        "truncated.png": red[: len(red) * 6 // 10],
        # Seeded random bytes with an image's name.
        "garbage.png": bytes(rng.randrange(256) for _ in range(512)),
        "empty.png": b"",
        # A well-formed PNG whose header says 0 x 0 pixels.
        "zero_size.png": png(0, 0),
        # A header claiming 100000 x 100000 pixels over a few bytes (a decompression bomb).
        "bomb.png": png(100000, 100000, b"\x00" * 64),
        "tiled_planar_16bit.tiff": tiled_planar_tiff(40, 24, 16),
    }


# --- The cases ----------------------------------------------------------------------------


def score(pkg="{PKG}", *paths, more=()):
    return ["score", pkg, *paths, *LABELS, *more]


def vtde(args, exit_code=0, **more):
    step = {"action": "vtde", "args": args, "exit": exit_code}
    step.update(more)
    return step


def case(name, issue, setup, args, exit_code, stderr=(), **more):
    c = {
        "name": name,
        "issue": issue,
        "setup": setup,
        "args": args,
        "exit": exit_code,
        "stderr": list(stderr),
        "forbidden": list(ALWAYS_FORBIDDEN) + list(more.pop("forbidden", [])),
    }
    c.update(more)
    return c


ISSUE = {
    "concurrent": "Data loss: Two runs writing the same `-o` (score file or embeddings "
    "directory) corrupt it silently",
    "output_input": "Data loss: An output may be an input: `-o` or `--errors` naming an "
    "input image, the labels file or a file of the package overwrites it",
    "errors_output": "Data loss: `--errors X -o X` interleaves two writers",
    "merge": "Data loss: `merge -o` may name one of its shards",
    "non_utf8": "Data loss: Non-UTF-8 file names are written lossily",
    "kill_early": "Data loss: A fresh run over a finished embeddings directory, killed in "
    "its first 100 ms, leaves `meta.json` saying `complete: true` over an empty "
    "`embeddings.npy`",
    "dev_zero": "Denial of service: `vtde score PKG /dev/zero ...` reads without bound",
    "fifo": "Denial of service: A FIFO named on the command line (or as `search --image`) "
    "hangs forever",
    "threads": "Denial of service: `--threads 4096` prints its results and never exits; "
    "`--inter-op-threads 4096` hangs",
    "weights_null": "Packages let through: `\"weights\": null` for a graph in `vtde.json` "
    "loads its `.onnx.data` without hashing it",
    "tokenizer": "Packages let through: `tokenizer.json` is never hashed",
    "image_size": "Packages let through: `image.height`/`width` of 100000 aborts on "
    "allocation; 4294967295 panics (exit 101)",
    "logit_scale": "Packages let through: `logit_scale` whose exponential overflows f32 "
    "(88.8, 100, 1e30) or `rescale_factor` 1e38 give all-NaN probabilities with exit 0",
    "export": "Packages let through: `vtde export` writes such packages, and packages the "
    "runtime then refuses (NaN `logit_scale` saved as `null`, negative `layer_norm_eps`, "
    "zero `image_std`), all with exit 0",
    "layers": "Packages let through: `num_hidden_layers: 0` exports zero layers although "
    "the weights hold three",
    "no_resize": "Packages let through: A manifest with neither resize nor crop is "
    "accepted; then every image fails (exit 1)",
    "decoder_panic": "Messages: Decoder panics that vtde catches still print Rust's panic "
    "message and backtrace to stderr",
    "doubled": "Messages: Doubled texts (\"file not found: file not found\")",
    "dir_tokenizer": "Messages: a directory where `tokenizer.json` should be reported as "
    "\"not found\"",
    "symlink_zero": "Messages: a symlink to `/dev/zero` as \"missing\"",
    "symlinks": "Messages: dangling or looping symlinks in walked folders skipped without "
    "a word",
    "search": "Messages: `search` over an `.npy` whose width differs from `meta.json`, or "
    "with fewer index lines than rows, prints garbage with exit 0",
    "dev_null": "Messages: `-o /dev/null` fails with \"Invalid argument\"",
    "disk_full": "Messages: after disk full the summary counts rows that were not "
    "committed and a 0-byte `.tmp` is left",
    "signals": "Messages: SIGINT/SIGTERM stop without the summary line",
    "images": "Introduction: vtde never panicked on an image (broken images are reported, "
    "the rest processed)",
    "control": "Control: the untampered inputs work (the corpus's set-up is sound)",
}

EMBED = ["embed", "{PKG}", "{IMAGES}", "--batch-size", "2"]
SCORE_IMAGES = ["score", "{PKG}", "{IMAGES}", *LABELS, "--batch-size", "2"]
REFUSED = {"stderr_lines": 1}


def cases():
    out = []
    add = out.append

    # --- Controls -------------------------------------------------------------------
    add(case("control_score", ISSUE["control"], "plain", score("{PKG}", "{IMAGES}"), 0,
             ["8 scored"], stdout_lines=9))
    add(case("control_export", ISSUE["control"], "plain",
             ["export", "{CKPT}", "{TMP}/exported"], 0, ["done"],
             may_change=["{TMP}/exported"],
             checks=[{"check": "exists", "path": "{TMP}/exported/vtde.json"}]))

    # --- Data loss ------------------------------------------------------------------
    add(case(
        "concurrent_score_same_output", ISSUE["concurrent"], "concurrent_writers",
        SCORE_IMAGES + ["-o", "{TMP}/out.csv"], 2, ["out.csv", "another vtde run"],
        prepare=[vtde(SCORE_IMAGES + ["-o", "{TMP}/reference.csv"])],
        first={"args": SCORE_IMAGES + ["-o", "{TMP}/out.csv"], "exit": 0,
               "marker": "{TMP}/out.csv.progress.json", "delay_ms": 1000},
        may_change=["{TMP}/out.csv", "{TMP}/out.csv.progress.json",
                    "{TMP}/out.csv.errors.csv"],
        checks=[
            {"check": "same_bytes", "path": "{TMP}/out.csv", "as": "{TMP}/reference.csv"},
            {"check": "json", "path": "{TMP}/out.csv.progress.json",
             "pointer": "/complete", "value": True},
            {"check": "no_temporaries", "dir": "{TMP}"},
        ], **REFUSED))
    add(case(
        "concurrent_embed_same_dir", ISSUE["concurrent"], "concurrent_writers",
        EMBED + ["-o", "{TMP}/emb"], 2, ["emb/embeddings.npy", "another vtde run"],
        prepare=[vtde(EMBED + ["-o", "{TMP}/reference"])],
        first={"args": EMBED + ["-o", "{TMP}/emb"], "exit": 0,
               "marker": "{TMP}/emb/meta.json", "delay_ms": 1000},
        may_change=["{TMP}/emb"],
        checks=[
            {"check": "same_bytes", "path": "{TMP}/emb/embeddings.npy",
             "as": "{TMP}/reference/embeddings.npy"},
            {"check": "same_bytes", "path": "{TMP}/emb/index.jsonl",
             "as": "{TMP}/reference/index.jsonl"},
            {"check": "json", "path": "{TMP}/emb/meta.json", "pointer": "/complete",
             "value": True},
            {"check": "no_temporaries", "dir": "{TMP}/emb"},
        ], **REFUSED))
    add(case("output_is_input_image", ISSUE["output_input"], "plain",
             SCORE_IMAGES + ["-o", "{IMAGES}/red_circle.png"], 2, ["red_circle.png"],
             **REFUSED))
    add(case("errors_is_input_image", ISSUE["output_input"], "plain",
             SCORE_IMAGES + ["-o", "{TMP}/s.csv", "--errors", "{IMAGES}/red_circle.png"], 2,
             ["red_circle.png"],
             checks=[{"check": "absent", "path": "{TMP}/s.csv"}], **REFUSED))
    add(case("output_is_labels_file", ISSUE["output_input"], "plain",
             ["score", "{PKG}", "{IMAGES}", "--labels-file", "{TMP}/labels.txt",
              "-o", "{TMP}/labels.txt"], 2, ["labels.txt"],
             prepare=[{"action": "write", "path": "{TMP}/labels.txt",
                       "text": "circle\nsquare\n"}], **REFUSED))
    add(case("output_is_package_manifest", ISSUE["output_input"], "plain",
             SCORE_IMAGES + ["-o", "{PKG}/vtde.json"], 2, ["vtde.json"], **REFUSED))
    add(case("output_is_package_weights", ISSUE["output_input"], "plain",
             SCORE_IMAGES + ["-o", "{PKG}/vision.onnx.data"], 2, ["vision.onnx.data"],
             **REFUSED))
    add(case("errors_same_as_output", ISSUE["errors_output"], "plain",
             SCORE_IMAGES + ["-o", "{TMP}/x.csv", "--errors", "{TMP}/x.csv"], 2, ["x.csv"],
             checks=[{"check": "absent", "path": "{TMP}/x.csv"}], **REFUSED))
    add(case("merge_output_is_a_shard", ISSUE["merge"], "plain",
             ["merge", "-o", "{TMP}/s0.csv", "{TMP}/s0.csv", "{TMP}/s1.csv"], 2, ["s0.csv"],
             prepare=[vtde(SCORE_IMAGES + ["--shard", "0/2", "-o", "{TMP}/s0.csv"]),
                      vtde(SCORE_IMAGES + ["--shard", "1/2", "-o", "{TMP}/s1.csv"])],
             **REFUSED))
    odd = [
        {"action": "mkdir", "path": "{TMP}/odd"},
        {"action": "copy", "from": "{EXAMPLES}/red_circle.png",
         "to": "{TMP}/odd/{BYTE:ff}.png"},
        {"action": "copy", "from": "{EXAMPLES}/blue_triangle.png",
         "to": "{TMP}/odd/{BYTE:fe}.png"},
    ]
    add(case("non_utf8_names_written_apart", ISSUE["non_utf8"], "non_utf8_names",
             score("{PKG}", "{TMP}/odd"), 0, ["2 scored"], prepare=odd,
             stdout_lines=3,
             stdout_contains=["{TMP}/odd/\\xfe.png,", "{TMP}/odd/\\xff.png,"],
             forbidden=["\ufffd"]))
    add(case("non_utf8_names_resumed", ISSUE["non_utf8"], "non_utf8_names",
             score("{PKG}", "{TMP}/odd", more=["-o", "{TMP}/out.csv", "--resume"]), 0,
             ["1 scored, 1 skipped"],
             prepare=odd[:2] + [
                 vtde(score("{PKG}", "{TMP}/odd", more=["-o", "{TMP}/out.csv"])),
             ] + odd[2:],
             may_change=["{TMP}/out.csv", "{TMP}/out.csv.progress.json",
                         "{TMP}/out.csv.errors.csv"],
             checks=[{"check": "lines", "path": "{TMP}/out.csv", "count": 3,
                      "contains": ["{TMP}/odd/\\xff.png,", "{TMP}/odd/\\xfe.png,"]}]))
    for ms in (0, 20, 50, 100):
        add(case(
            f"kill_early_{ms}ms_over_finished_dir", ISSUE["kill_early"], "kill_early",
            EMBED + ["-o", "{TMP}/emb"], None,
            prepare=[vtde(EMBED + ["-o", "{TMP}/reference"]),
                     vtde(EMBED + ["-o", "{TMP}/emb"])],
            kill_after_ms=ms, env={"VTDE_TEST_BATCH_DELAY_MS": "2000"},
            may_change=["{TMP}/emb"],
            checks=[{"check": "embeddings_consistent", "dir": "{TMP}/emb", "rows": 8}],
            after=[
                vtde(["search", "{TMP}/emb", "a circle"], 0),
                vtde(EMBED + ["-o", "{TMP}/emb", "--resume"], 0, checks=[
                    {"check": "same_bytes", "path": "{TMP}/emb/embeddings.npy",
                     "as": "{TMP}/reference/embeddings.npy"},
                    {"check": "json", "path": "{TMP}/emb/meta.json", "pointer": "/complete",
                     "value": True},
                ]),
            ]))

    # --- Denial of service, hangs ---------------------------------------------------
    add(case("dev_zero_named", ISSUE["dev_zero"], "plain",
             score("{PKG}", "/dev/zero", "{IMAGES}/red_circle.png"), 1,
             ["/dev/zero", "not a regular file", "1 scored"], stdout_lines=2))
    add(case("symlink_to_dev_zero_named", ISSUE["symlink_zero"], "symlink_to_dev_zero",
             score("{PKG}", "{TMP}/zero.png", "{IMAGES}/red_circle.png"), 1,
             ["zero.png", "not a regular file"], stdout_lines=2,
             forbidden=["missing", "not found"],
             prepare=[{"action": "symlink", "target": "/dev/zero", "path": "{TMP}/zero.png"}]))
    add(case("symlink_to_dev_zero_in_folder", ISSUE["symlink_zero"], "symlink_to_dev_zero",
             score("{PKG}", "{IMAGES}"), 1, ["zero.png", "not a regular file", "8 scored"],
             stdout_lines=9, forbidden=["missing", "not found"],
             prepare=[{"action": "symlink", "target": "/dev/zero",
                       "path": "{IMAGES}/zero.png"}]))
    add(case("fifo_named", ISSUE["fifo"], "fifo",
             score("{PKG}", "{TMP}/pipe.png", "{IMAGES}/red_circle.png"), 1,
             ["pipe.png", "not a regular file"], stdout_lines=2,
             prepare=[{"action": "mkfifo", "path": "{TMP}/pipe.png"}]))
    add(case("fifo_in_folder", ISSUE["fifo"], "fifo",
             score("{PKG}", "{IMAGES}"), 1, ["pipe.png", "not a regular file"],
             stdout_lines=9,
             prepare=[{"action": "mkfifo", "path": "{IMAGES}/pipe.png"}]))
    add(case("fifo_as_search_image", ISSUE["fifo"], "fifo",
             ["search", "{TMP}/emb", "--image", "{TMP}/pipe.png"], 2,
             ["pipe.png", "not a regular file"], stdout_lines=0,
             prepare=[vtde(EMBED + ["-o", "{TMP}/emb"]),
                      {"action": "mkfifo", "path": "{TMP}/pipe.png"}], **REFUSED))
    add(case("socket_named", "What to build 4: devices, FIFOs, sockets named directly are "
             "reported and skipped, exit 1", "socket",
             score("{PKG}", "{TMP}/sock.png", "{IMAGES}/red_circle.png"), 1,
             ["sock.png", "not a regular file"], stdout_lines=2,
             prepare=[{"action": "socket", "path": "{TMP}/sock.png"}]))
    add(case("threads_4096", ISSUE["threads"], "plain",
             score("{PKG}", "{IMAGES}", more=["--threads", "4096"]), 2,
             ["4096", "--threads"], stdout_lines=0))
    add(case("inter_op_threads_4096", ISSUE["threads"], "plain",
             score("{PKG}", "{IMAGES}", more=["--inter-op-threads", "4096"]), 2,
             ["4096", "--inter-op-threads"], stdout_lines=0))

    # --- Packages let through -------------------------------------------------------
    def package_case(name, issue, overlay, expect, **more):
        add(case(name, issue, "plain", score("{PKG}", "{IMAGES}"), 2, expect,
                 package=f"packages/{overlay}", stdout_lines=0, **REFUSED, **more))

    package_case("weights_null_vision", ISSUE["weights_null"], "weights-null-vision",
                 ["vision.onnx.data"])
    package_case("weights_null_projection_scrambled", ISSUE["weights_null"],
                 "weights-null-projection-scrambled", ["projection.onnx.data"])
    package_case("tokenizer_tampered", ISSUE["tokenizer"], "tokenizer-tampered",
                 ["tokenizer.json", "sha256"])
    package_case("tokenizer_not_json", ISSUE["tokenizer"], "tokenizer-not-json",
                 ["tokenizer.json", "sha256"])
    for side in ("100000", "4294967295"):
        package_case(f"image_size_{side}", ISSUE["image_size"], f"image-size-{side}",
                     ["image.height", "16384"])
    for tag in ("88.8", "100", "1e30"):
        package_case(f"logit_scale_{tag.replace('.', '_')}", ISSUE["logit_scale"],
                     f"logit-scale-{tag}", ["logit_scale"])
    package_case("rescale_factor_1e38", ISSUE["logit_scale"], "rescale-factor-1e38",
                 ["rescale_factor"])
    package_case("normalize_std_zero", "What to build 5: every preprocessing constant "
                 "finite and sensible", "normalize-std-zero", ["normalize.std"])
    package_case("neither_resize_nor_crop", ISSUE["no_resize"], "no-resize-no-crop",
                 ["resize"])
    add(case("embed_text_with_bad_logit_scale_package", ISSUE["logit_scale"], "plain",
             ["embed-text", "{PKG}", "--texts-file", "{TMP}/texts.txt", "-o", "{TMP}/t"], 2,
             ["logit_scale"], package="packages/logit-scale-1e30",
             prepare=[{"action": "write", "path": "{TMP}/texts.txt", "text": "a circle\n"}],
             checks=[{"check": "absent", "path": "{TMP}/t/embeddings.npy"}], **REFUSED))

    def export_case(name, issue, overlay, expect):
        add(case(name, issue, "plain", ["export", "{CKPT}", "{TMP}/exported"], 2, expect,
                 checkpoint=f"checkpoints/{overlay}",
                 checks=[{"check": "absent", "path": "{TMP}/exported/vtde.json"}],
                 may_change=["{TMP}/exported"]))

    export_case("export_nan_logit_scale", ISSUE["export"], "nan-logit-scale",
                ["logit_scale", "model.safetensors"])
    export_case("export_logit_scale_100", ISSUE["export"], "logit-scale-100",
                ["logit_scale", "model.safetensors"])
    export_case("export_negative_layer_norm_eps", ISSUE["export"], "negative-layer-norm-eps",
                ["text_config.layer_norm_eps", "config.json"])
    export_case("export_zero_image_std", ISSUE["export"], "zero-image-std",
                ["image_std", "processor_config.json"])
    export_case("export_rescale_factor_1e38", ISSUE["export"], "rescale-factor-1e38",
                ["rescale_factor", "processor_config.json"])
    export_case("export_zero_num_hidden_layers", ISSUE["layers"], "zero-num-hidden-layers",
                ["vision_config.num_hidden_layers", "config.json"])

    # --- Messages -------------------------------------------------------------------
    add(case("decoder_panic_tiled_planar_tiff", ISSUE["decoder_panic"], "plain",
             score("{PKG}", "{CORPUS}/images/tiled_planar_16bit.tiff",
                   "{IMAGES}/red_circle.png"), 1,
             ["tiled_planar_16bit.tiff", "1 scored"], stdout_lines=2,
             stderr_lines=2, forbidden=["thread '"]))
    broken = ["truncated.png", "garbage.png", "empty.png", "zero_size.png", "bomb.png"]
    # What each reason must say, from what the file is.
    reasons = ["empty", "truncated", "0x0", "100000x100000"]
    add(case("broken_images_folder", ISSUE["images"], "plain",
             score("{PKG}", "{CORPUS}/images", "{IMAGES}/red_circle.png"), 1,
             broken + reasons + ["tiled_planar_16bit.tiff", "1 scored", "6 failed"],
             stdout_lines=2, stderr_lines=7, forbidden=["thread '"]))
    add(case("broken_images_embed", ISSUE["images"], "plain",
             ["embed", "{PKG}", "{CORPUS}/images", "{IMAGES}", "-o", "{TMP}/emb"], 1,
             broken + ["8 embedded", "6 failed"], may_change=["{TMP}/emb"],
             checks=[{"check": "lines", "path": "{TMP}/emb/errors.jsonl", "count": 6},
                     {"check": "lines", "path": "{TMP}/emb/index.jsonl", "count": 8}]))
    add(case("missing_file_said_once", ISSUE["doubled"], "plain",
             score("{PKG}", "{TMP}/nope.png", "{IMAGES}/red_circle.png"), 1,
             ["nope.png"], stdout_lines=2, stderr_lines=2))
    add(case("missing_package_said_once", ISSUE["doubled"], "plain",
             score("{TMP}/no-package", "{IMAGES}"), 2, ["no-package"], stdout_lines=0,
             **REFUSED))
    add(case("dir_as_tokenizer", ISSUE["dir_tokenizer"], "dir_as_tokenizer",
             score("{PKG}", "{IMAGES}"), 2, ["tokenizer.json", "is a directory"],
             stdout_lines=0, forbidden=["not found"],
             prepare=[{"action": "remove", "path": "{PKG}/tokenizer.json"},
                      {"action": "mkdir", "path": "{PKG}/tokenizer.json"}], **REFUSED))
    add(case("dangling_symlink_in_folder", ISSUE["symlinks"], "dangling_symlink",
             score("{PKG}", "{IMAGES}"), 1, ["dangling.png", "dangling symbolic link"],
             stdout_lines=9,
             prepare=[{"action": "symlink", "target": "nowhere.png",
                       "path": "{IMAGES}/dangling.png"}]))
    add(case("looping_symlink_in_folder", ISSUE["symlinks"], "looping_symlink",
             score("{PKG}", "{IMAGES}"), 1, ["loop_a.png", "symbolic link loop"],
             stdout_lines=9,
             prepare=[{"action": "symlink", "target": "loop_b.png",
                       "path": "{IMAGES}/loop_a.png"},
                      {"action": "symlink", "target": "loop_a.png",
                       "path": "{IMAGES}/loop_b.png"}]))
    search_base = [vtde(EMBED + ["-o", "{TMP}/emb"])]
    add(case("search_npy_width_differs", ISSUE["search"], "plain",
             ["search", "{TMP}/emb", "a circle"], 2, ["embeddings.npy", "meta.json"],
             stdout_lines=0,
             prepare=search_base + [{"action": "npy_header", "path": "{TMP}/emb/embeddings.npy",
                                     "rows": 16, "cols": 32}], **REFUSED))
    add(case("search_index_short", ISSUE["search"], "plain",
             ["search", "{TMP}/emb", "a circle"], 2, ["index.jsonl", "meta.json"],
             stdout_lines=0,
             prepare=search_base + [{"action": "keep_lines", "path": "{TMP}/emb/index.jsonl",
                                     "count": 3}], **REFUSED))
    add(case("dev_null_output", ISSUE["dev_null"], "plain",
             SCORE_IMAGES + ["-o", "/dev/null"], 0, ["8 scored"], stdout_lines=0,
             forbidden=["Invalid argument"],
             checks=[{"check": "absent", "path": "/dev/null.progress.json"},
                     {"check": "absent", "path": "/dev/null.errors.csv"}]))
    add(case("dev_null_embed_refused", ISSUE["dev_null"], "plain",
             EMBED + ["-o", "/dev/null"], 2, ["/dev/null"], forbidden=["Invalid argument"],
             **REFUSED))
    add(case(
        "disk_full", ISSUE["disk_full"], "disk_full",
        ["score", "{PKG}", "{TMP}/many", "--labels", "circle", "square", "triangle", "star",
         "cross", "heart", "moon", "ring", "kite", "oval", "wave", "leaf",
         "--batch-size", "2", "-o", "{TMP}/out/scores.csv"], 2, ["scores.csv"],
        prepare=[{"action": "replicate", "from": "{EXAMPLES}", "to": "{TMP}/many",
                  "copies": 96},
                 {"action": "mkdir", "path": "{TMP}/out"}],
        file_limit_blocks=12, may_change=["{TMP}/out"],
        checks=[{"check": "summary_matches_marker", "word": "scored",
                 "marker": "{TMP}/out/scores.csv.progress.json"},
                {"check": "committed_lines", "path": "{TMP}/out/scores.csv",
                 "marker": "{TMP}/out/scores.csv.progress.json", "header": 1},
                {"check": "no_temporaries", "dir": "{TMP}/out"}],
        after=[vtde(["score", "{PKG}", "{TMP}/many", "--labels", "circle", "square",
                     "triangle", "star", "cross", "heart", "moon", "ring", "kite", "oval",
                     "wave", "leaf", "--batch-size", "2", "-o", "{TMP}/out/scores.csv",
                     "--resume"], 0,
                    checks=[{"check": "lines", "path": "{TMP}/out/scores.csv",
                             "count": 97}])]))
    many = [{"action": "replicate", "from": "{EXAMPLES}", "to": "{TMP}/many", "copies": 24}]
    score_many = ["score", "{PKG}", "{TMP}/many", *LABELS, "--batch-size", "2"]
    embed_many = ["embed", "{PKG}", "{TMP}/many", "--batch-size", "2"]
    add(case(
        "sigterm_score", ISSUE["signals"], "sigterm", score_many + ["-o", "{TMP}/out.csv"], 143,
        ["SIGTERM", "vtde score:"],
        prepare=many + [vtde(score_many + ["-o", "{TMP}/reference.csv"])],
        signal={"name": "TERM", "marker": "{TMP}/out.csv.progress.json", "at_least": 2},
        env={"VTDE_TEST_BATCH_DELAY_MS": "150"},
        may_change=["{TMP}/out.csv", "{TMP}/out.csv.progress.json",
                    "{TMP}/out.csv.errors.csv"],
        checks=[{"check": "summary_matches_marker", "word": "scored",
                 "marker": "{TMP}/out.csv.progress.json"},
                {"check": "json", "path": "{TMP}/out.csv.progress.json",
                 "pointer": "/complete", "value": False}],
        after=[vtde(score_many + ["-o", "{TMP}/out.csv", "--resume"], 0, checks=[
            {"check": "same_bytes", "path": "{TMP}/out.csv", "as": "{TMP}/reference.csv"}])]))
    add(case(
        "sigint_embed", ISSUE["signals"], "sigint", embed_many + ["-o", "{TMP}/emb"], 130,
        ["SIGINT", "vtde embed:"],
        prepare=many + [vtde(embed_many + ["-o", "{TMP}/reference"])],
        signal={"name": "INT", "marker": "{TMP}/emb/meta.json", "at_least": 2},
        env={"VTDE_TEST_BATCH_DELAY_MS": "150"},
        may_change=["{TMP}/emb"],
        checks=[{"check": "summary_matches_marker", "word": "embedded",
                 "marker": "{TMP}/emb/meta.json"},
                {"check": "embeddings_consistent", "dir": "{TMP}/emb", "rows": 24}],
        after=[vtde(embed_many + ["-o", "{TMP}/emb", "--resume"], 0, checks=[
            {"check": "same_bytes", "path": "{TMP}/emb/embeddings.npy",
             "as": "{TMP}/reference/embeddings.npy"}])]))

    names = [c["name"] for c in out]
    assert len(names) == len(set(names)), "case names must be unique"
    return out


SETUPS = {
    "plain": "nothing beyond the steps in `prepare` (files, directories, vtde runs)",
    "fifo": "a FIFO is made at test time (`mkfifo`)",
    "socket": "a Unix socket is bound at test time",
    "symlink_to_dev_zero": "a symbolic link to /dev/zero is made at test time",
    "dangling_symlink": "a symbolic link to nothing is made in a walked folder",
    "looping_symlink": "two symbolic links pointing at each other in a walked folder",
    "dir_as_tokenizer": "the package's tokenizer.json is replaced by a directory",
    "non_utf8_names": "files named by bytes that are not UTF-8 ({BYTE:xx}) are made",
    "concurrent_writers": "`first` runs slowed down (VTDE_TEST_BATCH_DELAY_MS); once its "
    "marker commits a batch, the case's run writes the same output; then `first` must "
    "finish",
    "kill_early": "the run is killed (SIGKILL) `kill_after_ms` after it starts",
    "sigterm": "SIGTERM once `signal.marker` commits `signal.at_least` items",
    "sigint": "SIGINT once `signal.marker` commits `signal.at_least` items",
    "disk_full": "the run is started by `bash -c` with `ulimit -f file_limit_blocks` and "
    "SIGXFSZ ignored: writes past the limit fail with EFBIG, as on a full disk",
}


def document(all_cases):
    return {
        "format": 1,
        "generated_by": "tools/make_adversarial_corpus.py (do not edit by hand)",
        "placeholders": {
            "{TMP}": "the case's own temporary directory",
            "{PKG}": "{TMP}/pkg: a copy of models/demo with the case's `package` overlay "
            "(a directory of this corpus) laid over it",
            "{CKPT}": "{TMP}/checkpoint: a copy of tests/fixtures/vit-bert-tiny/checkpoint "
            "with the case's `checkpoint` overlay laid over it",
            "{IMAGES}": "{TMP}/images: a copy of models/examples (8 PNG images)",
            "{DEMO}": "models/demo (read only)",
            "{EXAMPLES}": "models/examples (read only)",
            "{CORPUS}": "this directory (read only)",
            "{BYTE:xx}": "the raw byte 0xxx (for file names that are not UTF-8)",
        },
        "setups": SETUPS,
        "fields": {
            "exit": "the expected exit code; null for a run killed by SIGKILL",
            "stderr": "substrings stderr must hold",
            "forbidden": "substrings stderr must not hold",
            "stderr_lines": "the number of lines stderr must have (one line per problem)",
            "stdout_lines": "the number of lines stdout must have",
            "stdout_contains": "substrings stdout must hold",
            "prepare": "steps before the run: vtde runs (with their exit code) and "
            "file-system actions",
            "may_change": "paths under {TMP} the run may write; every other file under "
            "{TMP} (the package, images, checkpoint, prepared files) must be "
            "byte-identical after the run, and models/demo, models/examples, the fixture "
            "checkpoint and this corpus always are",
            "checks": "what the outputs must hold after the run",
            "after": "vtde runs after the checks (resume), each with its exit code and "
            "checks",
        },
        "always_forbidden": ALWAYS_FORBIDDEN,
        "cases": all_cases,
    }


README = """# Adversarial corpus (generated)

Written by `tools/make_adversarial_corpus.py`; do not edit by hand. Regenerate with
`python3 tools/make_adversarial_corpus.py` (plain Python 3, no packages) and check with
`--check`. `crates/vtde-cli/tests/adversarial.rs` runs every case of `cases.json`
through the `vtde` binary (`cargo test -p vtde-cli --test adversarial -- --nocapture`
prints the table).

- `packages/<name>/`: overlays of `models/demo`: only the files that differ (a tampered
  `vtde.json`, `tokenizer.json`, scrambled weights); the test copies `models/demo` and
  lays the overlay over it, so the large weights are not committed twice.
- `checkpoints/<name>/`: overlays of `tests/fixtures/vit-bert-tiny/checkpoint` for
  `vtde export` (NaN or overflowing `logit_scale`, negative `layer_norm_eps`, zero
  `image_std`, `rescale_factor` 1e38, `num_hidden_layers` 0).
- `images/`: broken images (truncated, garbage, empty, a 0x0 header, a 100000x100000
  header, a tiled planar 16-bit TIFF on which the `tiff` crate panics).
- `cases.json`: every case, with the line of issue 11 it covers, its set-up, the
  arguments, the expected exit code, stderr texts required and forbidden, and the
  checks on the outputs. Non-UTF-8 names, FIFOs, sockets, symbolic links, concurrent
  runs, kills, signals and a full disk are set up by the test at run time.
"""


def build(out):
    for name, (overlay, _) in packages().items():
        for f, data in overlay.items():
            write(os.path.join(out, "packages", name, f), data)
    for name, overlay in checkpoints().items():
        for f, data in overlay.items():
            write(os.path.join(out, "checkpoints", name, f), data)
    for name, data in images().items():
        write(os.path.join(out, "images", name), data)
    write(os.path.join(out, "cases.json"), dump_json(document(cases())))
    write(os.path.join(out, "README.md"), README.encode())


def same_tree(a, b):
    cmp = filecmp.dircmp(a, b)
    if cmp.left_only or cmp.right_only or cmp.funny_files:
        return False
    _, mismatch, errors = filecmp.cmpfiles(a, b, cmp.common_files, shallow=False)
    if mismatch or errors:
        return False
    return all(same_tree(os.path.join(a, d), os.path.join(b, d)) for d in cmp.common_dirs)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default=OUT, help="where to write (default: %(default)s)")
    parser.add_argument("--check", action="store_true",
                        help="write to a temporary directory and compare with --out")
    a = parser.parse_args()
    if a.check:
        with tempfile.TemporaryDirectory() as tmp:
            build(tmp)
            if not os.path.isdir(a.out) or not same_tree(tmp, a.out):
                sys.exit(f"{a.out} differs from what the script writes: regenerate it")
        print(f"{a.out} is up to date")
        return
    if os.path.exists(a.out):
        shutil.rmtree(a.out)
    build(a.out)
    n = len(json.loads(read(os.path.join(a.out, "cases.json")))["cases"])
    size = sum(os.path.getsize(os.path.join(d, f)) for d, _, fs in os.walk(a.out) for f in fs)
    print(f"wrote {a.out}: {n} cases, {size / 1024:.0f} KiB")


if __name__ == "__main__":
    main()
