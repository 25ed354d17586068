"""What the trainers share, by composition: the frozen VGG loss network, the AdaIN objective
(used by the AdaIN and lite tasks), sample and validation pairs, and ``--init``."""

from __future__ import annotations

from collections.abc import Callable, Collection
from enum import Enum
from pathlib import Path

import torch
from torch import nn

from ..errors import StylenormError, WeightsError
from ..hub.files import load_state_strict, load_weights, read_meta
from ..models.cin import CINConfig
from ..models.decoder import DecoderConfig
from ..models.lite import LiteConfig
from ..models.vgg import TAPS, VGGEncoder
from ..nn.conditional import adain
from ..nn.losses import content_loss, gram_style_loss, mean_std_style_loss
from ..ranks import from_environment
from ..runtime import resolve_device
from .config import TrainConfig
from .data import CropConfig, find_images, make_data, validation_images
from .distributed import join_job

__all__ = ["AdaINObjective", "FrozenEncoder", "StyleLoss", "crop_data", "find_inputs", "paired",
           "init_architecture", "sample_pairs", "start_from", "validation_pairs"]


class StyleLoss(str, Enum):
    MEAN_STD = "mean-std"
    GRAM = "gram"


class FrozenEncoder:
    """The frozen VGG encoder as a loss network. It is cast to the training dtype once and runs
    outside autocast (which would run every reflection pad in float32, copying each activation
    map twice)."""

    def __init__(self, encoder: VGGEncoder) -> None:
        self.module = encoder
        self.dtype = torch.float32

    def prepare(self, device: torch.device, dtype: torch.dtype,
                memory_format: torch.memory_format) -> None:
        self.module.to(device, dtype=dtype, memory_format=memory_format)
        self.dtype = dtype

    def __call__(self, images: torch.Tensor, upto: str = "relu4_1") -> dict[str, torch.Tensor]:
        with torch.autocast(images.device.type, enabled=False):
            return self.module(images.to(self.dtype), upto)


class AdaINObjective:
    """The AdaIN training objective (see :mod:`.adain`): the AdaIN target of a content and a
    style, and the content and style losses of an output against them."""

    def __init__(self, encoder: FrozenEncoder, content_weight: float, style_weight: float,
                 gram: bool = False) -> None:
        self.encode = encoder
        self.content_weight, self.style_weight = content_weight, style_weight
        self.style_loss: Callable = gram_style_loss if gram else mean_std_style_loss

    @torch.no_grad()
    def targets(self, content: torch.Tensor, style: torch.Tensor):
        """AdaIN(f(c), f(s)) at relu4_1 (float32) and the style's features at every tap."""
        content_feat = self.encode(content)["relu4_1"]
        style_feats = self.encode(style)
        return adain(content_feat.float(), style_feats["relu4_1"].float()), style_feats

    def losses(self, output: torch.Tensor, target: torch.Tensor,
               style_feats: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        output_feats = self.encode(output)
        loss_c = content_loss(output_feats["relu4_1"], target)
        loss_s = self.style_loss(output_feats, style_feats, TAPS)
        total = self.content_weight * loss_c + self.style_weight * loss_s
        return {"total": total, "content": loss_c, "style": loss_s}


def paired(contents: torch.Tensor, styles: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """The first n of each, n the smaller count."""
    n = min(contents.shape[0], styles.shape[0])
    return contents[:n], styles[:n]


def sample_pairs(contents: list[Path], styles: list[Path], crop_size: int, count: int,
                 device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    """Centre crops of the first ``count`` contents and styles, for the sample grids."""
    return paired(validation_images(contents, crop_size, count, device),
                  validation_images(styles, crop_size, count, device))


def validation_pairs(config: TrainConfig, device: torch.device
                     ) -> tuple[torch.Tensor, torch.Tensor] | None:
    """``config.val_count`` held-out contents and styles, centre crops at the crop size, or None
    when no ``--val-content``/``--val-style`` folders are given."""
    if not (config.val_content and config.val_style):
        if config.val_content or config.val_style:
            raise StylenormError("val_content and val_style go together; got only one",
                                 params=("val_content", "val_style"))
        return None
    folders = (find_images(config.val_content, "val-content"),
               find_images(config.val_style, "val-style"))
    return paired(*(validation_images(f, config.crop_size, config.val_count, device)
                    for f in folders))


# Settings in which a --init model may differ from the trained one because ``complete`` grows
# it (the lite model: :func:`~..models.lite.grown_state`): (kind, setting) -> rule(file, asked).
GROWS = {
    ("lite", "res_blocks"): lambda in_file, asked: asked > in_file,
    ("lite", "style_mlp"): lambda in_file, asked: in_file == 0 < asked,
    ("lite", "style_deep"): lambda in_file, asked: in_file == 0 < asked,
}


def architecture(kind: str, config) -> dict:
    """The settings that fix the tensor shapes of a ``kind`` model, from its config dataclass.
    A CIN model's style count is its styles folder's, so it is named apart from the flags."""
    if kind == "lite":
        return {"widths": tuple(config.widths), "res_blocks": config.res_blocks,
                "style_mlp": config.style_mlp, "style_deep": config.style_deep}
    if kind == "cin":
        return {"widths": tuple(config.widths), "res_blocks": config.res_blocks,
                "style count": config.num_styles}
    return {"norm": config.norm}  # adain: the decoder's


def file_architecture(path: str, kind: str) -> dict:
    """:func:`architecture` of the ``kind`` model file ``path`` (``--init``), from its metadata."""
    meta = read_meta(path)
    if meta.kind != kind:
        raise StylenormError(f"--init {path}: a {meta.kind!r} model, not {kind!r}")
    try:
        if kind == "lite":
            return architecture(kind, LiteConfig.from_dict(meta.config))
        if kind == "cin":
            return architecture(kind, CINConfig(**meta.config))
        return architecture(kind, DecoderConfig(**meta.config.get("decoder", {})))
    except (TypeError, ValueError, AttributeError) as exc:
        raise WeightsError(f"--init {path}: its config does not describe a {kind!r} model "
                             f"({exc})") from None


def check_architecture(path: str, kind: str, in_file: dict, asked: dict,
                       grow: bool = False) -> None:
    """One line naming the first setting in which ``asked`` differs from the ``--init`` file,
    unless ``grow`` and the model grows that way (:data:`GROWS`)."""
    for setting, value in asked.items():
        old = in_file.get(setting, value)
        rule = GROWS.get((kind, setting))
        if old == value or (grow and rule is not None and rule(old, value)):
            continue
        params = (setting,) if " " not in setting else ()
        raise WeightsError(f"--init {path}: {setting} {_show(old)} in the file, "
                           f"{_show(value)} asked for", params=params)


def _show(value) -> str:
    return ",".join(map(str, value)) if isinstance(value, tuple) else str(value)


def init_architecture(path: str, kind: str, asked: dict, given: Collection[str] = (),
                      grow: bool = False) -> dict:
    """``--init``: the architecture settings ``asked`` for (:func:`architecture`'s names), with
    each one not in ``given`` (not set by the user) read from the file ``path``; a setting
    given that differs from the file's is refused in one line (unless ``grow`` may grow it)."""
    in_file = file_architecture(path, kind)
    settings = {k: (v if k in given else in_file.get(k, v)) for k, v in asked.items()}
    check_architecture(path, kind, in_file, settings, grow)
    return settings


def start_from(network: nn.Module, path: str, kind: str,
               complete: Callable[[nn.Module, dict], dict] | None = None) -> None:
    """``--init``: load the weights of the ``kind`` model file ``path`` into ``network`` (same
    architecture, or one line naming the setting that differs). ``complete(network, state)``,
    if given, may fill in tensors the file lacks (the lite model grows new residual blocks, a
    StyleFilm and a deep style level this way)."""
    config = network.config
    check_architecture(path, kind, file_architecture(path, kind), architecture(kind, config),
                       grow=complete is not None)
    state, _ = load_weights(path)
    if complete is not None:
        state = complete(network, state)
    load_state_strict(network, state, f"--init {path}")


def find_inputs(config: TrainConfig, content: str = "content", style: str = "style"
                ) -> tuple[torch.device, list[Path], list[Path]]:
    """What every trainer opens with: ``config`` validated, its device (under torchrun: the
    rank's, with the process group started), and the images of its content and style folders
    (the config fields named ``content`` and ``style``)."""
    config.validate()
    _, device = join_job(resolve_device(config.device))
    contents = find_images(getattr(config, content), content)
    styles = find_images(getattr(config, style), style)
    return device, contents, styles


def crop_data(config: TrainConfig, device: torch.device, folders: list[list[Path]]):
    """Training batches of random crops from ``folders``, deterministic from (seed, iteration);
    under torchrun, this rank's share of each global batch."""
    return make_data(folders, CropConfig(config.crop_size), config.batch_size, config.seed, device,
                     config.data_mode, config.num_workers, from_environment())
