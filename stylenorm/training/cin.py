"""Train a multi-style CIN network (Dumoulin et al. 2017) on a content folder and style images.

Each image in the styles folder is one style (sorted by file name; the names are stored in the
model). With T the CIN transformer network, f the frozen VGG encoder and G the Gram matrix
normalised by C*H*W, a content crop c and a style k drawn per sample::

    o = T(c, onehot(k))
    L = content_weight * ||f_content(o) - f_content(c)||^2          (relu3_1 by default)
      + style_weight * sum_l ||G(f_l(o)) - G(f_l(s_k))||^2           (relu1_1 .. relu4_1)
      + tv_weight * TV(o)

The Gram matrices of the styles are computed once. With ``style_loss`` "meanstd" the style term
is instead AdaIN's: ||mu(f_l(o)) - mu(f_l(s_k))||^2 + ||sigma(f_l(o)) - sigma(f_l(s_k))||^2, the
distance the quality reports measure (its weight is of the order of 1-10, not 1e4). With
``teacher`` (an installed AdaIN model) the content target becomes the teacher's output and an L1
term to it is added (:mod:`.cin_teacher`). With ``extend`` (a trained CIN model), the
new styles get new (gamma, beta) rows and only those rows train: every other parameter is frozen
and the old rows receive zero gradient, so the old styles' outputs stay bit-identical. With
``refine`` (style names, and ``init`` a trained model with the same styles) only those styles'
rows train, on those styles alone: a style the network renders too like another gets every
iteration, and the others stay bit-identical. With ``favour`` ({style name: weight}) the
per-sample style draws are weighted (a style of weight 3 is drawn three times as often as one
of the default weight 1) while every weight and every style still trains: more iterations for
the styles the network renders furthest from their paintings.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from torch import nn

from ..errors import ImageError, StylenormError
from ..hub.files import save_weights
from ..io.images import load_image
from ..models.cin import CINConfig, CINTransformer, grown_state
from ..models.vgg import TAPS, VGGEncoder
from ..nn.conditional import one_hot_weights
from ..nn.losses import (
    content_loss,
    gram_matrix,
    gram_target_loss,
    mean_std_target_loss,
    tv_loss,
)
from ..nn.statistics import channel_mean_std
from ..ranks import from_environment
from ..runtime import resolve_dtype
from .cin_teacher import CINTeacher
from .config import TrainConfig
from .data import log
from .inputs import crop_data, find_inputs, validation_images
from .loop import TrainResult, fit, load_frozen_encoder
from .objective import FrozenEncoder
from .warm_start import start_from

__all__ = ["CINTask", "CINTrainConfig", "train_cin"]

STYLE_STREAM = 1_000  # generator stream for the per-sample style draws
PIXEL_WEIGHT = 10.0  # the L1 to the teacher's output: the default, the only value without one


def _mean_std_term(feats: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """AdaIN's style term against stacked (N, 2, C, 1, 1) channel means and stds."""
    return mean_std_target_loss(feats, targets[:, 0], targets[:, 1])


STYLE_TERMS = {"gram": gram_target_loss, "meanstd": _mean_std_term}  # --style-loss: its term
STYLE_LOSSES = tuple(STYLE_TERMS)


@dataclass
class CINTrainConfig(TrainConfig):
    """`TrainConfig` plus data, network size, loss layers and weights, and ``extend``."""

    content: str = ""
    styles: str = ""
    extend: str = ""
    refine: tuple[str, ...] = ()  # names of the styles whose (gamma, beta) rows alone train
    favour: dict[str, float] = field(default_factory=dict)  # style name: draw weight (else 1)
    encoder: str = "vgg19-normalised"
    widths: tuple[int, int, int] = (32, 64, 128)
    res_blocks: int = 5
    style_size: int = 512
    content_layer: str = "relu3_1"
    style_layers: tuple[str, ...] = TAPS
    content_weight: float = 1.0
    style_weight: float = 1e4
    style_loss: str = "gram"  # or "meanstd" (see the module doc)
    tv_weight: float = 0.0
    teacher: str = ""  # an installed AdaIN model's name or file (see .cin_teacher)
    pixel_weight: float = PIXEL_WEIGHT  # the L1 to the teacher's output; only with a teacher
    lr: float = 1e-3
    sample_count: int = 2

    def validate(self) -> None:
        super().validate()
        for layer in (self.content_layer, *self.style_layers):
            if layer not in TAPS:
                raise StylenormError(f"unknown VGG layer {layer!r}; choose from {list(TAPS)}")
        if self.style_size < 16:
            raise StylenormError(f"style_size must be >= 16; got {self.style_size}",
                                 params=("style_size",))
        if self.crop_size % 4:
            raise StylenormError(f"crop_size must be a multiple of 4 for the CIN network "
                                 f"(two stride-2 layers); got {self.crop_size}",
                                 params=("crop_size",))
        if self.val_content or self.val_style or self.val_every:
            raise StylenormError("val_content, val_style and val_every are for adain and lite: "
                                 "a CIN network's styles are its training set",
                                 params=("val_content", "val_style", "val_every"))
        if self.style_loss not in STYLE_LOSSES:
            raise StylenormError(f"style_loss must be one of {', '.join(STYLE_LOSSES)}; got "
                                 f"{self.style_loss!r}", params=("style_loss",))
        if self.refine and self.extend:
            raise StylenormError("refine trains some of a model's own styles, extend adds new "
                                 "ones: give one of them", params=("refine", "extend"))
        if any(not 0 < weight < math.inf for weight in self.favour.values()):
            raise StylenormError(f"favour: each weight must be > 0 and finite; got {self.favour}",
                                 params=("favour",))
        if not self.teacher and self.pixel_weight != PIXEL_WEIGHT:
            raise StylenormError(f"pixel_weight {self.pixel_weight}: the weight of the L1 to a "
                                 "teacher's output; it needs a teacher",
                                 params=("pixel_weight", "teacher"))

    @classmethod
    def upgraded(cls, values: dict) -> dict:
        """A config saved when ``pixel_weight`` was accepted, and ignored, without a teacher
        reads with the default (so that its run resumes)."""
        values = super().upgraded(values)
        if not values.get("teacher") and "pixel_weight" in values:
            values["pixel_weight"] = PIXEL_WEIGHT
        return values


@dataclass
class StyleTargets:
    """Per layer, the trained styles' Gram matrices (K, C, C) or channel means and stds
    (K, 2, C, 1, 1), and their model indices."""

    per_layer: dict[str, torch.Tensor]
    rows: list[int] = field(default_factory=list)


class CINTask:
    """The CIN network being trained, the frozen encoder, style targets and sample pictures."""

    def __init__(self, config: CINTrainConfig, encoder: VGGEncoder, network: CINTransformer,
                 targets: StyleTargets, samples: torch.Tensor, only_rows: bool = False,
                 teacher: CINTeacher | None = None) -> None:
        self.config, self.network, self.teacher = config, network, teacher
        self.targets, self.samples = targets, samples
        self.encode = FrozenEncoder(encoder)
        self.forward = torch.compile(network) if config.compile else network
        self.style_term = STYLE_TERMS[config.style_loss]  # chosen once, not per step
        self.draw_odds = draw_odds(config.favour, network.config.style_names, targets.rows)
        if only_rows:
            train_only_rows(network, targets.rows)

    def prepare(self, device: torch.device, dtype: torch.dtype, channels_last: bool) -> None:
        fmt = torch.channels_last if channels_last else torch.contiguous_format
        self.network.to(device, memory_format=fmt)
        self.encode.prepare(device, dtype, fmt)
        self.targets.per_layer = {k: v.to(device) for k, v in self.targets.per_layer.items()}

    def trainable(self) -> list[nn.Parameter]:
        return [p for p in self.network.parameters() if p.requires_grad]

    def draw_styles(self, iteration: int, n: int) -> torch.Tensor:
        """Positions in ``targets.rows`` for each sample, a pure function of (seed, iteration);
        under torchrun the draws of the global batch are made and this rank's ``n`` kept."""
        share = from_environment()
        rng = np.random.default_rng([self.config.seed, iteration, STYLE_STREAM])
        if self.draw_odds is None:
            picks = rng.integers(0, len(self.targets.rows), n * share.count)
        else:
            picks = rng.choice(len(self.targets.rows), n * share.count, p=self.draw_odds)
        return torch.from_numpy(picks[share.index * n:(share.index + 1) * n])

    def losses(self, batch: list[torch.Tensor], iteration: int) -> dict[str, torch.Tensor]:
        content = batch[0]
        picks = self.draw_styles(iteration, content.shape[0])
        rows = torch.tensor(self.targets.rows)[picks]
        weights = one_hot_weights(rows, self.network.num_styles).to(content.device)
        output = self.forward(content, weights)
        out_feats = self.encode(output)
        taught = None if self.teacher is None else self.teacher.outputs(content, picks)
        with torch.no_grad():
            layer = self.config.content_layer
            target = self.encode(content if taught is None else taught, layer)[layer]
        loss_c = content_loss(out_feats[layer], target)
        picks = picks.to(content.device)
        loss_s = torch.stack([self.style_term(out_feats[name], self.targets.per_layer[name][picks])
                              for name in self.config.style_layers]).sum()
        total = self.config.content_weight * loss_c + self.config.style_weight * loss_s
        losses = {"total": total, "content": loss_c, "style": loss_s}
        if taught is not None:
            losses["pixel"] = (output.float() - taught).abs().mean()
            losses["total"] = losses["total"] + self.config.pixel_weight * losses["pixel"]
        if self.config.tv_weight:
            losses["tv"] = tv_loss(output)
            losses["total"] = losses["total"] + self.config.tv_weight * losses["tv"]
        return losses

    def sample_rows(self) -> list[list[torch.Tensor]]:
        shown = self.targets.rows[:6]
        rows = []
        for content in self.samples:
            outs = [self.network(content[None], one_hot_weights(k, self.network.num_styles)
                                 .to(content.device)).float()[0] for k in shown]
            rows.append([content, *outs])
        return rows

    def export(self, path: Path, provenance: dict) -> Path:
        return save_weights(path, self.network.state_dict(), CINTransformer.kind,
                            self.network.config.to_dict(), provenance)

    def validation_losses(self) -> None:
        return None  # CIN's styles are its training set: there is no held-out style

    def report(self, run_dir: Path) -> tuple[str, dict]:
        names = self.network.config.style_names
        listing = ", ".join(f"{i}: {n}" for i, n in enumerate(names))
        return f"styles (--style-index): {listing}", {"style_names": names}


def draw_odds(favour: dict[str, float], names: list[str], rows: list[int]) -> np.ndarray | None:
    """The probability of drawing each of ``rows`` (model rows of ``names``), by the
    ``favour`` weights (1 for a style not named); None, uniform draws, without ``favour``."""
    if not favour:
        return None
    trained = [names[row] for row in rows]
    unknown = sorted(set(favour) - set(trained))
    if unknown:
        raise StylenormError(f"favour: no style named {', '.join(unknown)} among the trained "
                             f"styles ({', '.join(trained)})", params=("favour",))
    weights = np.array([favour.get(name, 1.0) for name in trained], dtype=np.float64)
    return weights / weights.sum()


def train_only_rows(network: CINTransformer, rows: list[int]) -> None:
    """Train only the (gamma, beta) rows ``rows``: everything else is frozen, and the other
    rows' gradients are zeroed (Adam then leaves them exactly as they are)."""
    network.requires_grad_(False)
    for layer in network.cin_layers():
        for param in (layer.gamma, layer.beta):
            param.requires_grad_(True)
            mask = torch.zeros_like(param[:, :1])
            mask[rows] = 1
            param.register_hook(lambda grad, m=mask: grad * m.to(grad))


def trained_rows(config: CINTrainConfig, names: list[str], old: int,
                 init: str | None) -> list[int]:
    """The network rows that train: the ``refine`` styles' (which need ``init``), else those
    of the styles in the folder (all of them, or the new ones of ``extend``)."""
    if not config.refine:
        return list(range(old, len(names)))
    if init is None:
        raise StylenormError("refine trains some styles of a trained CIN model: give it as "
                             "init (--init FILE)", params=("refine", "init"))
    unknown = [name for name in config.refine if name not in names]
    if unknown:
        raise StylenormError(f"refine: no style named {', '.join(unknown)} among the "
                             f"--styles ({', '.join(names)})", params=("refine",))
    return sorted({names.index(name) for name in config.refine})


def readable_styles(paths: list[Path], size: int) -> dict[Path, torch.Tensor]:
    """The style images that decode (shorter side ``size``), by path; each unreadable one is
    reported once and skipped, as the other trainers skip unreadable images."""
    images = {}
    for path in paths:
        try:
            images[path] = load_image(path, size=size).rgb
        except ImageError as exc:
            log.warning("warning: skipping unreadable image: %s", exc)
    if not images:
        raise StylenormError(f"--styles {paths[0].parent}: none of its {len(paths)} images "
                             "is readable")
    return images


def style_targets(encoder: VGGEncoder, images: dict[Path, torch.Tensor], layers,
                  device: torch.device, kind: str = "gram") -> dict[str, torch.Tensor]:
    """Per layer, the K style images' (K, C, C) Gram matrices, or ("meanstd") their channel
    means and stds, (K, 2, C, 1, 1)."""
    encoder = encoder.to(device)
    found: dict[str, list[torch.Tensor]] = {layer: [] for layer in layers}
    with torch.no_grad():
        for rgb in images.values():
            feats = encoder(rgb.to(device))
            for layer in layers:
                found[layer].append(gram_matrix(feats[layer])[0] if kind == "gram" else
                                    torch.stack(channel_mean_std(feats[layer].float()))[:, 0])
    return {layer: torch.stack(values) for layer, values in found.items()}


def build_network(config: CINTrainConfig, names: list[str]) -> tuple[CINTransformer, int]:
    """A new network for ``names``, or the ``extend`` model with ``names`` appended; and the
    number of styles it had before (0 for a new one)."""
    if not config.extend:
        cin = CINConfig(style_names=names, widths=config.widths, res_blocks=config.res_blocks)
        return CINTransformer(cin), 0
    from ..hub.zoo import load_model

    base = load_model(config.extend)
    if getattr(base, "kind", None) != CINTransformer.kind:
        raise StylenormError(f"--extend {config.extend}: holds a {base.kind!r} model; "
                             "expected a CIN model trained by `stylenorm train cin`")
    old = base.num_styles
    base.add_styles(names)
    return base.train(), old


def train_cin(config: CINTrainConfig, *, resume: bool = False, progress: bool = True,
              init: str | None = None) -> TrainResult:
    """Train (or extend, or resume) a multi-style CIN network; see the module doc. ``init``: a
    CIN model file with the same styles and widths to start from (and as many residual blocks,
    or fewer: the new ones start as the identity)."""
    device, contents, styles = find_inputs(config, style="styles")
    images = readable_styles(sorted(styles, key=lambda p: (p.name, str(p))), config.style_size)
    style_paths = list(images)
    encoder, encoder_meta = load_frozen_encoder(config.encoder)
    torch.manual_seed(config.seed)
    network, old = build_network(config, [p.stem for p in style_paths])
    rows = trained_rows(config, network.config.style_names, old, init)
    trained = {path: images[path] for path in (style_paths[row - old] for row in rows)}
    targets = StyleTargets(style_targets(encoder, trained, config.style_layers, device,
                                         config.style_loss), rows=rows)
    if init is not None and not resume:
        start_from(network, init, CINTransformer.kind, config=network.config.to_dict(),
                   complete=grown_state)
    teacher = None
    if config.teacher:
        teacher = CINTeacher(config.teacher, list(trained.values()), device, resolve_dtype(
            "auto", device))
    samples = validation_images(contents, config.crop_size, config.sample_count, device)
    task = CINTask(config, encoder, network, targets, samples,
                   only_rows=bool(old or config.refine), teacher=teacher)
    data = crop_data(config, device, [contents])
    provenance = {"trained_with": "stylenorm train cin", **encoder_meta,
                  "content_images": len(contents), "style_files": [p.name for p in style_paths],
                  "extended_from": Path(config.extend).name if config.extend else None,
                  "trained_styles": targets.rows, "init": Path(init).name if init else None,
                  "style_draw_weights": config.favour or None,
                  **(teacher.provenance() if teacher else {})}
    return fit(task, config, data, resume=resume, progress=progress, provenance=provenance)
