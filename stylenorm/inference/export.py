"""Export the lite model to ONNX: ``content`` + ``style`` (+ ``alpha``) in, ``image`` out.

:class:`ExportableLite` restates the lite model's inference path (``LiteModel.style_code`` and
``forward`` with the ``[..., :H, :W]`` crop of ``Stylizer.render``) without Python decisions on
tensor shapes, so that height and width stay dynamic in the exported graph:

* the style (and, for ``alpha``, the content) is always resized to ``style_size`` shorter side;
  at that size already, antialiased bilinear resizing is the identity;
* the resized size, ``round(side * style_size / shorter side)``, is computed from the shape in
  integers, rounding half to even as Python's ``round`` does in ``LiteModel``;
* the style code is always mixed with the content's own code by ``alpha``: at ``alpha = 1``
  that adds exactly zero.
"""

from __future__ import annotations

import copy
import importlib.util
import os
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from ..errors import NonFiniteError, OptionError, StylenormError, WeightsError, install_hint
from ..hub.files import read_meta
from ..hub.store import resolve_weights
from ..hub.zoo import load_model
from ..io.atomic import atomic_write
from ..models.lite import LiteCode, LiteModel
from ..nn.conditional import mean_std
from .finite import require_finite

MIN_SIDE = 16  # the smallest image side stylize accepts (stylize.MIN_IMAGE_SIZE)
INPUT_NAMES = ["content", "style", "alpha"]
OUTPUT_NAMES = ["image"]
SUFFIXES = {".onnx": "onnx"}  # what each export format writes


def round_ratio(numerator, denominator):
    """``round(numerator / denominator)`` (half to even) of two positive ints or SymInts, in
    integer arithmetic so that an exported graph computes it from the input's shape."""
    quotient, twice_rest = numerator // denominator, 2 * (numerator % denominator)
    tie_to_odd = (twice_rest == denominator) & (quotient % 2 == 1)
    return (quotient + torch.sym_ite(twice_rest > denominator, 1, 0)
            + torch.sym_ite(tie_to_odd, 1, 0))


class ExportableLite(nn.Module):
    """A :class:`LiteModel`'s stylisation as one traceable function of two images and alpha.

    ``forward(content, style, alpha)`` equals
    ``model(content, model.style_code(style), alpha)[..., :H, :W].clamp(0, 1)``.

    Shape:
        content (1, 3, H, W), style (1, 3, Hs, Ws), both in [0, 1]; alpha () in [0, 1]
        -> image (1, 3, H, W) in [0, 1].
    """

    def __init__(self, model: LiteModel) -> None:
        super().__init__()
        self.model = model

    def style_input(self, images: torch.Tensor) -> torch.Tensor:
        """``images`` resized to ``style_size`` shorter side. Shape: (N, 3, h, w) -> (N, 3, ...)."""
        size = self.model.config.style_size
        if not size:
            return images
        h, w = images.shape[-2:]
        shorter = torch.sym_min(h, w)
        target = (round_ratio(h * size, shorter), round_ratio(w * size, shorter))
        return F.interpolate(images, size=target, mode="bilinear", antialias=True,
                             align_corners=False)

    def style_code(self, images: torch.Tensor) -> LiteCode:
        stats = [mean_std(f) for f in self.model.style_encoder(self.style_input(images))]
        return LiteCode([m for m, _ in stats], [s for _, s in stats])

    def forward(self, content: torch.Tensor, style: torch.Tensor,
                alpha: torch.Tensor) -> torch.Tensor:
        h, w = content.shape[-2:]
        own = self.style_code(content)
        features = self.model.content_features(content)
        image = crop(self.model.decode(features, self.style_code(style).lerp(own, alpha)), h, w)
        rebuilt = crop(self.model.decode(features, own), h, w)  # add_detail, traceable
        return (image + (1 - alpha) * (content - rebuilt)).clamp(0, 1)


def crop(images: torch.Tensor, h, w) -> torch.Tensor:
    """``images[..., :h, :w]`` by gathering rows and columns: a slice would make the exporter
    assume (guard) that the decoder's padded size is not H or W, true only for some sizes.

    Shape: (N, C, H', W') with H' >= h, W' >= w -> (N, C, h, w)."""
    rows, cols = torch.arange(h, device=images.device), torch.arange(w, device=images.device)
    return images.index_select(-2, rows).index_select(-1, cols)


def require_onnx_packages() -> None:
    missing = [name for name in ("onnx", "onnxscript") if importlib.util.find_spec(name) is None]
    if missing:
        raise StylenormError(f"ONNX export needs {' and '.join(missing)}: "
                             f"{install_hint('onnx')}")


def check_output(output: Path) -> None:
    """Fail before the (slow) export when ``output`` cannot be written or names another
    format than ONNX."""
    folder = output.parent
    if output.suffix.lower() not in SUFFIXES:
        raise OptionError(f"{output}: cannot export to {output.suffix or 'a file without a suffix'}"
                          f"; the formats are {', '.join(SUFFIXES.values())} (write "
                          f"{output.with_suffix('.onnx').name})", params=("output",))
    if output.is_dir():
        raise StylenormError(f"{output}: is a folder; give the output file, e.g. model.onnx")
    if not folder.is_dir():
        problem = "is not a folder" if folder.exists() else "does not exist"
        raise StylenormError(f"{output}: output folder {folder} {problem}")
    if not os.access(folder, os.W_OK):
        raise StylenormError(f"{output}: cannot write to the folder {folder} (permission denied)")


def load_lite_model(name_or_path: str | os.PathLike) -> tuple[LiteModel, Path]:
    """The lite model installed as ``name_or_path`` (or in that file), and its file; other
    kinds are refused before they are loaded."""
    path = resolve_weights(name_or_path)
    kind = read_meta(path).kind
    if kind != LiteModel.kind:
        raise WeightsError(f"export supports the lite model; {name_or_path} is a model of kind "
                           f"{kind!r}")
    return load_model(path), path


def export_onnx(model: LiteModel | str | os.PathLike, output: str | os.PathLike) -> Path:
    """Write ``model`` (a :class:`LiteModel`, or an installed name or weights file) as a
    float32 ONNX graph of :class:`ExportableLite` to ``output``, atomically; returns ``output``.

    Inputs ``content`` (1, 3, H, W) and ``style`` (1, 3, Hs, Ws), float32 in [0, 1] with
    dynamic sides of at least 16, and ``alpha`` () float32; output ``image`` (1, 3, H, W).
    """
    output = Path(output)
    check_output(output)
    if not isinstance(model, nn.Module):
        model, source = load_lite_model(model)
        if output.exists() and output.resolve() == source.resolve():
            raise StylenormError(f"{output}: is the model's weights file; refusing to overwrite")
    elif not isinstance(model, LiteModel):
        raise StylenormError(f"export supports the lite model; got a {type(model).__name__}")
    require_onnx_packages()
    wrapper = ExportableLite(copy.deepcopy(model).float().cpu()).eval()
    # torch.export first: it refuses a graph that holds only for some sizes (a shape guard)
    graph = torch.export.export(wrapper, example_inputs(), dynamic_shapes=dynamic_shapes())
    check_sample(graph.module(), output)
    program = torch.onnx.export(graph, input_names=INPUT_NAMES, output_names=OUTPUT_NAMES,
                                dynamic_shapes=dynamic_shapes(), dynamo=True, verbose=False)
    atomic_write(output, lambda tmp: program.save(tmp, external_data=False))
    return output


def sample_inputs() -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """A deterministic content and style with texture (constant images hide overflows), the
    style strength 1."""
    generator = torch.Generator().manual_seed(0)
    content = torch.rand(1, 3, 64, 80, generator=generator)
    style = torch.rand(1, 3, 72, 72, generator=generator)
    return content, style, torch.tensor(1.0)


@torch.inference_mode()
def check_sample(exported: nn.Module, output: Path) -> None:
    """Run the exported model on a sample before anything is written: NaN or infinite values
    (an overflow) are refused in one line."""
    try:
        require_finite(exported(*sample_inputs()), torch.float32)
    except NonFiniteError as exc:
        raise NonFiniteError(f"{output}: not written: on a sample image {exc}") from None


def example_inputs() -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Tracing inputs: no side a multiple of 4 or equal to another, so no size is special."""
    return torch.full((1, 3, 37, 50), 0.5), torch.full((1, 3, 45, 61), 0.5), torch.tensor(1.0)


def dynamic_shapes() -> dict:
    """Height and width of both images are dynamic (named so in the ONNX graph)."""
    dim = torch.export.Dim
    return {
        "content": {2: dim("height", min=MIN_SIDE), 3: dim("width", min=MIN_SIDE)},
        "style": {2: dim("style_height", min=MIN_SIDE), 3: dim("style_width", min=MIN_SIDE)},
        "alpha": None,
    }
