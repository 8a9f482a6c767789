"""The vtde wheel against the command line (same package, same numbers), against
transformers' recorded outputs (tests/fixtures), and with bad input (exceptions)."""

import json
import struct
import subprocess
import threading
import time

import numpy as np
import pytest
from PIL import Image

import vtde
from conftest import DEMO, EXAMPLES, FIXTURES, LABELS, REPO

# The tolerances of tests/parity.rs (docs/design.md): normalized embeddings within 1e-4
# of transformers'; image files end to end at cosine >= 0.9999 (PNG decoding and
# preprocessing are bit-exact, the rest is float rounding in the towers); logits 1e-3.
FEATURE_TOL = 1e-4
FILE_EMBED_COSINE = 0.9999
LOGIT_TOL = 1e-3


def read_safetensors(path):
    """The f32 tensors of a safetensors file (the format is a JSON header and raw data)."""
    data = path.read_bytes()
    (n,) = struct.unpack("<Q", data[:8])
    header = json.loads(data[8 : 8 + n])
    tensors = {}
    for name, info in header.items():
        if name == "__metadata__" or info["dtype"] != "F32":
            continue
        start, end = info["data_offsets"]
        raw = data[8 + n + start : 8 + n + end]
        tensors[name] = np.frombuffer(raw, dtype="<f4").reshape(info["shape"])
    return tensors


def fixture_configs():
    # As tests/support/lib.rs: a recording with a checkpoint (fit-checkpoint has none; its
    # checkpoint is made by `vtde fit` in crates/vtde-cli/tests/fit.rs).
    return sorted(
        p.name
        for p in FIXTURES.iterdir()
        if (p / "reference.safetensors").is_file() and (p / "checkpoint/config.json").is_file()
    )


# --- the same numbers as the command line -------------------------------------------------


def test_scores_match_the_cli(demo, cli):
    csv = subprocess.run(
        [cli, "score", DEMO, *EXAMPLES, "--labels", *LABELS],
        check=True, capture_output=True, text=True, cwd=REPO,
    ).stdout.splitlines()
    assert csv[0] == "path," + ",".join(LABELS)
    cli_rows = {}
    for line in csv[1:]:
        path, *probs = line.split(",")
        cli_rows[(REPO / path).resolve()] = [float(p) for p in probs]
    assert len(cli_rows) == len(EXAMPLES)

    scores = demo.score(demo.embed_images(EXAMPLES), demo.embed_labels(LABELS))
    assert scores.probs_per_image.dtype == np.float32
    assert scores.probs_per_image.shape == (len(EXAMPLES), len(LABELS))
    for path, probs in zip(EXAMPLES, scores.probs_per_image):
        # The CLI prints six decimals.
        np.testing.assert_allclose(probs, cli_rows[path.resolve()], rtol=0, atol=5.01e-7)
        assert LABELS[int(np.argmax(probs))].removeprefix("a ").replace(" ", "_") in path.name


def test_embeddings_are_the_clis_bytes(demo, cli, tmp_path):
    subprocess.run(
        [cli, "embed", DEMO, *EXAMPLES, "-o", tmp_path / "emb"],
        check=True, capture_output=True, cwd=REPO,
    )
    cli_embeddings = np.load(tmp_path / "emb" / "embeddings.npy")
    index = [
        (REPO / json.loads(line)["path"]).resolve()
        for line in (tmp_path / "emb" / "index.jsonl").read_text().splitlines()
    ]
    ours = demo.embed_images(index)
    assert ours.dtype == np.float32 and ours.shape == cli_embeddings.shape
    assert ours.tobytes() == cli_embeddings.astype(np.float32).tobytes()


def test_paths_bytes_pil_and_arrays_agree(demo):
    paths = EXAMPLES[:3]
    from_paths = demo.embed_images(paths)
    from_strs = demo.embed_images([str(p) for p in paths])
    from_bytes = demo.embed_images([p.read_bytes() for p in paths])
    from_pil = demo.embed_images([Image.open(p) for p in paths])
    from_arrays = demo.embed_images([np.asarray(Image.open(p).convert("RGB")) for p in paths])
    # A non-contiguous view (every other column of a wider image) is read correctly.
    wide = [np.repeat(np.asarray(Image.open(p).convert("RGB")), 2, axis=1)[:, ::2] for p in paths]
    from_views = demo.embed_images(wide)
    mixed = demo.embed_images([paths[0], paths[1].read_bytes(), Image.open(paths[2])])
    for other in (from_strs, from_bytes, from_pil, from_arrays, from_views, mixed):
        assert other.tobytes() == from_paths.tobytes()


def test_scores_object(demo):
    images = demo.embed_images(EXAMPLES[:2])
    texts = demo.embed_texts(LABELS[:2])
    scores = demo.score(images, texts)
    assert texts.shape == (2, demo.embedding_dim)
    np.testing.assert_array_equal(scores.logits_per_text, scores.logits_per_image.T)
    np.testing.assert_allclose(scores.probs_per_image.sum(axis=1), 1, atol=1e-6)
    assert isinstance(scores.loss, float)
    assert demo.score(images, texts[:1]).loss is None
    assert "Scores(images=2, texts=2" in repr(scores)


def test_two_threads_give_one_threads_bytes(demo):
    alone = demo.embed_images(EXAMPLES).tobytes() + demo.embed_texts(LABELS).tobytes()
    results = []

    def work():
        for _ in range(3):
            results.append(demo.embed_images(EXAMPLES).tobytes() + demo.embed_texts(LABELS).tobytes())

    threads = [threading.Thread(target=work) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(results) == 6 and all(r == alone for r in results)


def test_calls_release_the_gil(demo):
    """Another Python thread runs while the model works (it could not if the GIL were held)."""
    ticks = []
    stop = threading.Event()

    def spin():
        while not stop.is_set():
            ticks.append(time.perf_counter())

    spinner = threading.Thread(target=spin)
    spinner.start()
    time.sleep(0.01)
    start = time.perf_counter()
    demo.embed_images(EXAMPLES * 8)
    end = time.perf_counter()
    stop.set()
    spinner.join()
    # Only the first half: when the call returns, the waiting thread gets the GIL before
    # `end` is taken, so ticks just before `end` would appear even with the GIL held.
    middle = start + (end - start) / 2
    during = sum(start < t < middle for t in ticks)
    assert during > 100, f"{during} ticks of the other thread in {middle - start:.3f}s"


def test_typing_stubs_are_installed():
    import pathlib

    folder = pathlib.Path(vtde.__file__).parent
    assert (folder / "py.typed").is_file()
    assert "def embed_images" in (folder / "__init__.pyi").read_text()


# --- transformers' recorded outputs ---------------------------------------------------------


@pytest.mark.parametrize("config", fixture_configs())
def test_export_and_embed_match_transformers(config, tmp_path):
    fixture = FIXTURES / config
    info = json.loads((fixture / "reference.json").read_text())
    reference = read_safetensors(fixture / "reference.safetensors")
    package = vtde.export(fixture / "checkpoint", tmp_path / "package")
    model = vtde.Model(package, threads=2)

    texts = model.embed_texts(info["texts"])
    assert np.abs(texts - reference["text_embeds_normalized"]).max() <= FEATURE_TOL

    files = [FIXTURES / "inputs" / "images" / name for name in info["images"]]
    images = model.embed_images(files)
    expected = reference["image_embeds_normalized"]
    cosine = (images * expected).sum(axis=1) / (
        np.linalg.norm(images, axis=1) * np.linalg.norm(expected, axis=1)
    )
    assert cosine.min() >= FILE_EMBED_COSINE, f"{config}: min cosine {cosine.min()}"

    scores = model.score(images, texts)
    assert np.abs(scores.logits_per_image - reference["logits_per_image"]).max() <= LOGIT_TOL


# --- bad input: exceptions with vtde's message, never a crash -------------------------------


def test_missing_package_raises():
    with pytest.raises(vtde.VtdeError, match="/nonexistent/vtde-package"):
        vtde.Model("/nonexistent/vtde-package")


def test_bad_options_raise():
    with pytest.raises(ValueError, match="unknown execution provider"):
        vtde.Model(DEMO, provider="gpu")
    with pytest.raises(ValueError, match="unknown precision"):
        vtde.Model(DEMO, precision="fp64")
    with pytest.raises(ValueError, match="batch_size"):
        vtde.Model(DEMO, batch_size=0)
    with pytest.raises(vtde.VtdeError, match="int8"):
        vtde.Model(DEMO, precision="int8")  # the demo package has no int8 variant
    with pytest.raises(TypeError):
        vtde.Model(None)


def test_bad_images_raise(demo, tmp_path):
    corrupt = tmp_path / "corrupt.png"
    corrupt.write_bytes(b"\x89PNG\r\n\x1a\nthis is not the rest of a png")
    with pytest.raises(vtde.VtdeError, match="corrupt.png"):
        demo.embed_images([corrupt])
    with pytest.raises(vtde.VtdeError, match="nonexistent"):
        demo.embed_images(["/nonexistent/picture.png"])
    with pytest.raises(vtde.VtdeError, match=r"images\[1\]"):
        demo.embed_images([EXAMPLES[0].read_bytes(), b"not an image"])
    with pytest.raises(ValueError, match="empty"):
        demo.embed_images([b""])
    with pytest.raises(ValueError, match="height, width, 3"):
        demo.embed_images([np.zeros((0, 5, 3), np.uint8)])
    with pytest.raises(ValueError, match="height, width, 3"):
        demo.embed_images([np.zeros((4, 5, 4), np.uint8)])
    with pytest.raises(TypeError, match="uint8"):
        demo.embed_images([np.zeros((4, 5, 3), np.float32)])
    with pytest.raises(TypeError, match="NoneType"):
        demo.embed_images([None])
    with pytest.raises(TypeError, match="list"):
        demo.embed_images(str(EXAMPLES[0]))


def test_bad_texts_and_scores_raise(demo):
    with pytest.raises(TypeError, match="not a str"):
        demo.embed_texts("a red circle")
    with pytest.raises(TypeError):
        demo.embed_texts(["ok", None])
    images = demo.embed_images(EXAMPLES[:1])
    with pytest.raises(vtde.VtdeError):
        demo.score(images, np.ones((1, 3), np.float32))
    with pytest.raises(vtde.VtdeError, match="not finite|NaN|nan"):
        demo.score(images, np.full((1, demo.embedding_dim), np.nan, np.float32))
    with pytest.raises(TypeError):
        demo.score(images, np.ones((1, demo.embedding_dim), np.float64))


def test_export_errors_raise(tmp_path):
    with pytest.raises(vtde.VtdeError, match="config.json"):
        vtde.export(tmp_path / "no-checkpoint", tmp_path / "out")
    with pytest.raises(ValueError, match="unknown precision"):
        vtde.export(tmp_path, tmp_path / "out", variants=["fp64"])
