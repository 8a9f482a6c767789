"""Types of the vtde package."""

import os
import pathlib
from typing import Any, List, Optional, Sequence, Union

import numpy as np
import numpy.typing as npt

__version__: str

ImageInput = Union[str, os.PathLike, bytes, bytearray, npt.NDArray[np.uint8], Any]
"""A path, encoded image bytes, an RGB uint8 array [height, width, 3] or a PIL image."""

class VtdeError(Exception):
    """An error from vtde (package, image, ONNX Runtime, inference): the message says what."""

class Scores:
    """Scores of images against texts."""

    logits_per_image: npt.NDArray[np.float32]
    """[n_images, n_texts]: exp(logit_scale) * image . text."""
    logits_per_text: npt.NDArray[np.float32]
    """[n_texts, n_images]: the transpose."""
    probs_per_image: npt.NDArray[np.float32]
    """[n_images, n_texts]: each image's softmax over the texts."""
    loss: Optional[float]
    """CLIP's contrastive loss when there are as many texts as images, else None."""

class Model:
    """A vtde package opened for inference. Thread-safe; calls release the GIL."""

    def __new__(
        cls,
        path: Union[str, os.PathLike],
        provider: Union[str, Sequence[str], None] = None,
        threads: Optional[int] = None,
        precision: str = "fp32",
        exif_orientation: bool = False,
        batch_size: int = 32,
        onnxruntime_library: Union[str, os.PathLike, None] = None,
    ) -> "Model":
        """Opens the package folder `path`. `provider`: "cpu", "cuda", "cuda:1",
        "tensorrt", "coreml", or a list in order of preference. `threads`: per ONNX
        Runtime operator (None: one per core). `precision`: "fp32", "fp16" or "int8"
        (the package must hold it). `exif_orientation`: rotate images as their EXIF
        says. `onnxruntime_library`: the ONNX Runtime 1.31 library (default:
        ORT_DYLIB_PATH, the `onnxruntime` pip package, vtde's cache folders)."""
    @property
    def embedding_dim(self) -> int:
        """The embedding width P."""
    @property
    def package_dir(self) -> pathlib.Path:
        """The package folder."""
    def embed_images(self, images: Sequence[ImageInput]) -> npt.NDArray[np.float32]:
        """[n, P] L2-normalized embeddings, in order. A list of paths only is decoded on
        a pool of threads, as the vtde command line does."""
    def embed_texts(self, texts: Sequence[str]) -> npt.NDArray[np.float32]:
        """[m, P] L2-normalized embeddings of the texts as they are."""
    def embed_labels(
        self, labels: Sequence[str], templates: Optional[Sequence[str]] = None
    ) -> npt.NDArray[np.float32]:
        """One embedding per label: the mean of its prompt templates' ("a photo of a {}")
        normalized text embeddings."""
    def score(
        self,
        image_embeds: npt.NDArray[np.float32],
        text_embeds: npt.NDArray[np.float32],
    ) -> Scores:
        """Logits, per-image probabilities and loss from L2-normalized embeddings."""

def export(
    checkpoint: Union[str, os.PathLike],
    out: Union[str, os.PathLike],
    variants: Optional[List[str]] = None,
) -> pathlib.Path:
    """Exports a Hugging Face checkpoint folder to a vtde package in `out`; `variants`
    adds precision variants ("fp16", "int8"). Returns the package folder."""
