"""vtde: CLIP-style vision-text dual encoders (Hugging Face VisionTextDualEncoderModel and
CLIPModel, exported to a vtde package) run with ONNX Runtime, with transformers' exact
image preprocessing.

    import vtde
    model = vtde.Model("my-package", threads=2)
    images = model.embed_images(["cat.jpg", open("dog.png", "rb").read()])
    texts = model.embed_texts(["a cat", "a dog"])
    print(model.score(images, texts).probs_per_image)

The work runs in Rust with the GIL released; one Model may be shared between threads.
Errors from vtde are ``vtde.VtdeError`` with vtde's message.
"""

from __future__ import annotations

import glob
import importlib.util
import os
from typing import Any, Optional, Sequence, Union

from vtde import _vtde
from vtde._vtde import Scores, VtdeError, __version__, export

__all__ = ["Model", "Scores", "VtdeError", "export", "__version__"]


def _onnxruntime_from_pip() -> Optional[str]:
    """The ONNX Runtime library of an installed ``onnxruntime`` wheel, if any."""
    try:
        spec = importlib.util.find_spec("onnxruntime")
    except (ImportError, ValueError):
        return None
    if spec is None or not spec.submodule_search_locations:
        return None
    for folder in spec.submodule_search_locations:
        for pattern in ("libonnxruntime.so*", "libonnxruntime*.dylib", "onnxruntime.dll"):
            found = sorted(glob.glob(os.path.join(folder, "capi", pattern)))
            if found:
                return found[-1]
    return None


def _as_array(image: Any) -> Any:
    """PIL images become RGB uint8 arrays (converted by PIL, as transformers does)."""
    if hasattr(image, "convert") and hasattr(image, "mode") and hasattr(image, "size"):
        import numpy as np

        return np.asarray(image.convert("RGB") if image.mode != "RGB" else image, dtype=np.uint8)
    return image


class Model(_vtde.Model):
    """A vtde package opened for inference (see ``vtde.Model.__init__``)."""

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
        if onnxruntime_library is None and not os.environ.get("ORT_DYLIB_PATH"):
            onnxruntime_library = _onnxruntime_from_pip()
        return super().__new__(
            cls,
            path,
            provider=list(provider) if isinstance(provider, (list, tuple)) else provider,
            threads=threads,
            precision=precision,
            exif_orientation=exif_orientation,
            batch_size=batch_size,
            onnxruntime_library=onnxruntime_library,
        )

    def embed_images(self, images: Sequence[Any]) -> Any:
        if isinstance(images, (str, bytes, os.PathLike)) or hasattr(images, "convert"):
            raise TypeError("images must be a list (of paths, bytes, PIL images or arrays)")
        return super().embed_images([_as_array(image) for image in images])
