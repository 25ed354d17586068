"""Export a style model to ONNX: ``content`` + ``style`` + ``alpha`` in, ``image`` out.

:class:`Exportable` traces the model's own definition, ``style_code`` and ``forward``, with the
render path's crop to the content and clamp; nothing is restated here. What keeps height and
width dynamic in the graph lives in the model, which computes sizes from shapes in integers and
crops by gathering (:mod:`stylenorm.models.shapes`). ``alpha`` is a graph input, known only when
the graph runs, so the model takes its ``alpha`` < 1 path (its ``content_needs``), which at
``alpha = 1`` adds exactly zero. Which kinds export is the zoo's to say (``ModelKind.exports``).
"""

from __future__ import annotations

import copy
import importlib.util
import os
from pathlib import Path

import torch
from torch import nn

from ..errors import NonFiniteError, OptionError, StylenormError, WeightsError, install_hint
from ..hub.files import read_meta
from ..hub.store import resolve_weights
from ..hub.zoo import KINDS, exports, load_model
from ..io.atomic import atomic_write
from ..models.shapes import crop
from .finite import require_finite

MIN_SIDE = 16  # the smallest image side stylize accepts (stylize.MIN_IMAGE_SIZE)
INPUT_NAMES = ["content", "style", "alpha"]
OUTPUT_NAMES = ["image"]
SUFFIXES = {".onnx": "onnx"}  # what each export format writes


class Exportable(nn.Module):
    """A style model's stylisation as one traceable function of two images and alpha.

    ``forward(content, style, alpha)`` equals
    ``model(content, model.style_code(style), alpha)[..., :H, :W].clamp(0, 1)``.

    Shape:
        content (1, 3, H, W), style (1, 3, Hs, Ws), both in [0, 1]; alpha () in [0, 1]
        -> image (1, 3, H, W) in [0, 1].
    """

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, content: torch.Tensor, style: torch.Tensor,
                alpha: torch.Tensor) -> torch.Tensor:
        h, w = content.shape[-2:]
        image = self.model(content, self.model.style_code(style), alpha)
        return crop(image, h, w).clamp(0, 1)


def exported_kinds() -> str:
    """The kinds the zoo says export, for messages: ``the lite model``."""
    names = [name for name, kind in KINDS.items() if kind.exports]
    return f"the {' and '.join(names)} model{'s' * (len(names) > 1)}"


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


def load_exportable(name_or_path: str | os.PathLike) -> tuple[nn.Module, Path]:
    """The model installed as ``name_or_path`` (or in that file), and its file; kinds that do
    not export are refused before they are loaded."""
    path = resolve_weights(name_or_path)
    kind = read_meta(path).kind
    if not exports(kind):
        raise WeightsError(f"export supports {exported_kinds()}; {name_or_path} is a model of "
                           f"kind {kind!r}")
    return load_model(path), path


def export_onnx(model: nn.Module | str | os.PathLike, output: str | os.PathLike) -> Path:
    """Write ``model`` (a model of a kind that exports, or an installed name or weights file)
    as a float32 ONNX graph of :class:`Exportable` to ``output``, atomically; returns ``output``.

    Inputs ``content`` (1, 3, H, W) and ``style`` (1, 3, Hs, Ws), float32 in [0, 1] with
    dynamic sides of at least 16, and ``alpha`` () float32; output ``image`` (1, 3, H, W).
    """
    output = Path(output)
    check_output(output)
    if not isinstance(model, nn.Module):
        model, source = load_exportable(model)
        if output.exists() and output.resolve() == source.resolve():
            raise StylenormError(f"{output}: is the model's weights file; refusing to overwrite")
    elif not exports(getattr(model, "kind", None)):
        raise StylenormError(f"export supports {exported_kinds()}; got a {type(model).__name__}")
    require_onnx_packages()
    plain = copy.deepcopy(model).float().cpu().use_fast_path(False)  # the reference modules
    wrapper = Exportable(plain).eval()
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
