"""Distil an AdaIN teacher into the lite model: ``stylenorm train lite --teacher NAME|FILE``.

Distillation is a part of the lite task, not a task of its own: a lite training config with
``distill`` (:class:`DistillSettings`) gives its task a :class:`Distillation`, the loss terms
below, and its batches come from the teacher (:mod:`.lite_teacher`).

The teacher (an installed AdaIN model: the VGG encoder plus a decoder) stylises ``cache_pairs``
(content crop, style crop) pairs once (:mod:`.teacher_cache`); training then costs the
student's pass and a shallow VGG pass, not the teacher's. With ``cache_pairs`` 0 the teacher
runs on every batch instead (for a GPU: every batch a new pair). With t the cached teacher output,
o = m(c, code(s)) the student's, f the frozen VGG loss network and (mu_l, sigma_l) the style
crop's cached statistics::

    L = pixel_weight * mean|o - t|
      + feature_weight * ||f(o)_F - f(t)_F||^2                      (F = feature_layer)
      + style_weight * sum_{l in style_layers} ||mu(f_l(o)) - mu_l||^2 + ||sigma(..) - sigma_l||^2
      + identity_weight * ||m(c, code(c)) - c||^2                   (so that alpha = 0 gives c)
      + code_weight * ||P(code(s)) - (mu_l, sigma_l)_l||^2          (with code_weight > 0)
      + adain_weight * ||f(o)_relu4_1 - AdaIN(f(c)_relu4_1; mu, sigma_relu4_1)||^2

P, the code probe, is a linear map trained with the student and dropped from the model it
writes: it asks the style code (its deep level, with ``style_deep``) to hold the style's VGG
statistics, which the shallow code holds little of at relu3_1/relu4_1 (a linear probe of the
shipped model's code explains 98% of their variance at relu1_1 and 65% at relu4_1).

The last term (``adain_weight`` > 0) is the content loss the teacher itself was trained with
and :mod:`..inference.evaluate` measures: it holds the student to the AdaIN target directly,
not only through the teacher's output (which is itself some way from that target).

Pixel terms alone regress toward a blur of the teacher (the texture is lost); the style
statistics keep the texture and the feature term keeps the teacher's structure. Validation
reports the measures of :mod:`..inference.evaluate` (content loss to the AdaIN target at relu4_1,
style loss over relu1_1..relu4_1) on the held-out pairs, and the student's L1 to the teacher.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from ..errors import StylenormError
from ..models.lite import LiteModel
from ..models.vgg import TAP_CHANNELS, TAPS
from ..nn.conditional import adain_with_stats
from ..nn.losses import content_loss, mean_std_style_loss, mean_std_target_loss
from ..nn.metrics import psnr
from .objective import FrozenEncoder
from .teacher_cache import BASE_SIDE, stats_dicts

__all__ = ["DistillSettings", "Distillation", "RatioSet", "pair_style_losses"]

ADAIN_LAYER = "relu4_1"  # where AdaIN's target (and the quality report's content loss) lies


@dataclass
class DistillSettings:
    """The distillation part of a lite training config (``LiteTrainConfig.distill``): the
    teacher, its cache and the loss terms' weights and layers. The style and identity terms
    take the lite config's ``style_weight`` and ``identity_weight``."""

    teacher: str = ""  # an installed AdaIN model's name or file; required
    cache: str = ""  # default: OUT/teacher-cache
    cache_pairs: int = 2000
    add_caches: tuple[str, ...] = ()  # further caches, already built, drawn from with ``cache``
    style_side: int = BASE_SIDE  # largest shorter side styles keep in the cache (their own)
    style_jitter: bool = False  # cached style crops turned and recoloured (more styles)
    val_texture: str = ""  # further held-out styles (at style_side), for the per-style ratios
    pixel_weight: float = 10.0
    feature_weight: float = 1.0
    feature_layer: str = "relu2_1"
    style_layers: tuple[str, ...] = ("relu1_1", "relu2_1")
    code_weight: float = 0.0
    adain_weight: float = 0.0  # content loss to the AdaIN target at relu4_1 (0: off)

    def __post_init__(self) -> None:  # lists (from JSON) become tuples
        self.add_caches, self.style_layers = tuple(self.add_caches), tuple(self.style_layers)

    @classmethod
    def names(cls) -> tuple[str, ...]:
        return tuple(f.name for f in fields(cls))

    def validate(self, batch_size: int) -> None:
        if not self.teacher:
            raise StylenormError("distillation needs a teacher: an installed AdaIN model's "
                                 "name or file", params=("teacher",))
        for layer in (self.feature_layer, *self.style_layers):
            if layer not in TAPS:
                raise StylenormError(f"distillation layers must be among {list(TAPS)}; "
                                     f"got {layer!r}")
        for name in ("code_weight", "adain_weight"):
            if getattr(self, name) < 0:
                raise StylenormError(f"{name} must be >= 0; got {getattr(self, name)}",
                                     params=(name,))
        if 0 < self.cache_pairs < batch_size:
            raise StylenormError(f"cache_pairs must be 0 (no cache) or >= batch_size; got "
                                 f"{self.cache_pairs}", params=("cache_pairs", "batch_size"))
        if self.style_side < BASE_SIDE:
            raise StylenormError(f"style_side must be >= {BASE_SIDE}; got {self.style_side}",
                                 params=("style_side",))
        if self.style_side != BASE_SIDE and not self.cache_pairs:
            raise StylenormError("style_side applies to the teacher cache (cache_pairs > 0)",
                                 params=("style_side", "cache_pairs"))
        if self.style_jitter and not self.cache_pairs:
            raise StylenormError("style_jitter applies to the teacher cache (cache_pairs > 0)",
                                 params=("style_jitter", "cache_pairs"))
        if self.add_caches and not self.cache_pairs:
            raise StylenormError("add_caches needs a cache of its own (cache_pairs > 0)",
                                 params=("add_caches", "cache_pairs"))

    def cache_folder(self, out: str) -> Path:
        """The teacher cache's folder: ``cache``, or ``OUT/teacher-cache``."""
        return Path(self.cache) if self.cache else Path(out) / "teacher-cache"

    def deepest_layer(self) -> str:
        used = [self.feature_layer] if self.feature_weight else []
        used += [ADAIN_LAYER] if self.adain_weight else []
        return max([*self.style_layers, *used], key=TAPS.index)


@dataclass
class RatioSet:
    """Held-out pairs whose student/teacher style-loss ratio validation reports per style: the
    validation pairs, then ``texture_count`` pairs of texture styles (val contents in turn)."""

    contents: torch.Tensor  # (N, 3, S, S) in [0, 1]
    styles: torch.Tensor
    names: list[str]  # each pair's style file name
    texture_count: int
    teacher_losses: torch.Tensor  # (N,) the teacher output's style loss on each pair


def pair_style_losses(encode, outputs: torch.Tensor, styles: torch.Tensor) -> torch.Tensor:
    """The evaluation's style loss (:func:`mean_std_style_loss` over relu1_1..relu4_1) of each
    output to its style, (N,) float32. Shape: outputs, styles (N, 3, H, W) in [0, 1]."""
    f_o, f_s = encode(outputs, TAPS[-1]), encode(styles, TAPS[-1])
    return torch.stack([
        mean_std_style_loss({k: v[i:i + 1].float() for k, v in f_o.items()},
                            {k: v[i:i + 1].float() for k, v in f_s.items()}, TAPS).cpu()
        for i in range(outputs.shape[0])])


class Distillation:
    """The loss terms of distillation, for a lite task (:class:`~.lite.LiteTask`) that attaches
    its student and loss network to it; the teacher's outputs on the sample and validation
    pairs (``"samples"``, ``"validation"``: (N, 3, S, S)) and the held-out ratio set."""

    def __init__(self, settings: DistillSettings, style_weight: float,
                 teacher_outputs: dict[str, torch.Tensor],
                 ratio_set: RatioSet | None = None) -> None:
        self.settings, self.style_weight = settings, style_weight
        self.teacher_outputs, self.ratio_set = teacher_outputs, ratio_set
        self.network: LiteModel | None = None
        self.encode: FrozenEncoder | None = None

    def attach(self, network: LiteModel, encode: FrozenEncoder) -> None:
        """Use the task's student and loss network. With ``code_weight``, the student gets the
        code probe: a submodule, so that checkpoints, resume and the EMA hold it (the lite
        task's export leaves it out)."""
        self.network, self.encode = network, encode
        if self.settings.code_weight:
            network.code_probe = nn.Linear(2 * self.probed_channels(),
                                           2 * sum(TAP_CHANNELS[layer]
                                                   for layer in self.settings.style_layers))

    def probed_channels(self) -> int:
        """The code's channels the probe reads: the deep level's if there is one, else all."""
        config = self.network.config
        return config.style_deep or sum(config.widths)

    def code_loss(self, code, means: dict, stds: dict) -> torch.Tensor:
        """How far the probe's reading of the code is from the style's VGG statistics."""
        layers = self.settings.style_layers
        levels = slice(-1, None) if self.network.config.style_deep else slice(None)
        stats = torch.cat([t.flatten(1) for t in (*code.means[levels], *code.stds[levels])], 1)
        wanted = torch.cat([means[layer].flatten(1) for layer in layers]
                           + [stds[layer].flatten(1) for layer in layers], 1)
        probe = self.network.code_probe
        return F.mse_loss(probe(stats.to(probe.weight.dtype)).float(), wanted.float())

    def adain_loss(self, content: torch.Tensor, output_feat: torch.Tensor, means: dict,
                   stds: dict) -> torch.Tensor:
        """The content loss to the AdaIN target: the content crop's relu4_1 features with the
        style crop's (cached) relu4_1 statistics."""
        with torch.no_grad():
            content_feat = self.encode(content, ADAIN_LAYER)[ADAIN_LAYER].float()
            target = adain_with_stats(content_feat, means[ADAIN_LAYER], stds[ADAIN_LAYER])
        return content_loss(output_feat, target)

    def losses(self, batch: list[torch.Tensor]) -> tuple[dict[str, torch.Tensor], torch.Tensor]:
        """The named terms of a teacher batch (content, style, the teacher's output, the style
        statistics) and their weighted sum; the task adds its identity term."""
        content, style, target, *stats = batch
        settings = self.settings
        code = self.network.style_code(style)
        output = self.network(content, code)
        feats = self.encode(output, settings.deepest_layer())
        means, stds = stats_dicts(stats)
        loss_p = (output.float() - target).abs().mean()
        loss_s = sum(mean_std_target_loss(feats[layer], means[layer], stds[layer])
                     for layer in settings.style_layers)
        losses = {"pixel": loss_p, "style": loss_s}
        total = settings.pixel_weight * loss_p + self.style_weight * loss_s
        if settings.feature_weight:
            with torch.no_grad():
                wanted = self.encode(target, settings.feature_layer)[settings.feature_layer]
            losses["feature"] = F.mse_loss(feats[settings.feature_layer].float(), wanted.float())
            total = total + settings.feature_weight * losses["feature"]
        if settings.code_weight:
            losses["code"] = self.code_loss(code, means, stds)
            total = total + settings.code_weight * losses["code"]
        if settings.adain_weight:
            losses["adain"] = self.adain_loss(content, feats[ADAIN_LAYER], means, stds)
            total = total + settings.adain_weight * losses["adain"]
        return losses, total

    def validation_losses(self, validation: tuple[torch.Tensor, torch.Tensor],
                          measured: dict[str, torch.Tensor]) -> dict:
        """The task's ``measured`` losses on the held-out pairs (the quality report's content
        and style losses), the L1 to the teacher, the alpha-0 PSNR and the style ratios."""
        content, style = validation
        output = self.network(content, self.network.style_code(style)).float()
        teacher = self.teacher_outputs["validation"]
        rebuilt = self.network(content, self.network.style_code(content)).float().clamp(0, 1)
        losses = {"content": measured["content"], "style": measured["style"],
                  "teacher_l1": (output.clamp(0, 1) - teacher).abs().mean(),
                  "alpha0_psnr": torch.tensor(psnr(rebuilt, content.float())),
                  "total": measured["content"] + measured["style"]}
        return {**losses, **self.style_ratios(output)}

    def style_ratios(self, output: torch.Tensor) -> dict:
        """Each held-out style's student/teacher style-loss ratio (``style_ratios``, by file
        name) and their means over the validation styles and the texture styles."""
        ratios = self.ratio_set
        if ratios is None:
            return {}
        outputs = [output]
        if ratios.texture_count:
            content, style = (t[-ratios.texture_count:] for t in (ratios.contents,
                                                                   ratios.styles))
            outputs.append(self.network(content, self.network.style_code(style)).float())
        student = pair_style_losses(self.encode, torch.cat(outputs).clamp(0, 1), ratios.styles)
        ratio = student / ratios.teacher_losses
        plain = len(ratios.names) - ratios.texture_count
        out = {"style_ratio": ratio[:plain].mean()}
        if ratios.texture_count:
            out["texture_ratio"] = ratio[plain:].mean()
        out["style_ratios"] = {name: float(r) for name, r in zip(ratios.names, ratio,
                                                                  strict=True)}
        return out
