"""Distil an AdaIN teacher into the lite model: ``stylenorm train lite --teacher NAME|FILE``.

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

from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn
from torchvision.transforms.functional import center_crop

from ..errors import StylenormError
from ..io.images import load_image
from ..models.lite import LiteModel, grown_state
from ..models.vgg import TAP_CHANNELS, TAPS, VGGEncoder
from ..nn.conditional import adain_with_stats
from ..nn.losses import content_loss, mean_std_style_loss, mean_std_target_loss
from ..nn.metrics import psnr
from ..runtime import resolve_dtype
from .common import (
    FrozenEncoder,
    crop_data,
    find_inputs,
    paired,
    start_from,
    validation_pairs,
)
from .data import find_images, validation_images
from .distributed import refuse_in_job
from .lite import LiteTask, LiteTrainConfig
from .loop import TrainResult, fit, load_frozen_encoder
from .teacher import load_teacher, teacher_output
from .teacher_cache import (
    BASE_SIDE,
    CacheData,
    CachePool,
    CacheSpec,
    OnlineTeacherData,
    build_teacher_cache,
    decode_side,
    stats_dicts,
)

__all__ = ["DistillConfig", "DistillTask", "load_teacher", "train_distill"]

ADAIN_LAYER = "relu4_1"  # where AdaIN's target (and the quality report's content loss) lies


@dataclass
class DistillConfig(LiteTrainConfig):
    teacher: str = ""
    cache: str = ""  # default: OUT/teacher-cache
    cache_pairs: int = 2000
    add_caches: tuple[str, ...] = ()  # further caches, already built, drawn from with ``cache``
    style_side: int = BASE_SIDE  # largest shorter side styles keep in the cache (their own)
    val_texture: str = ""  # further held-out styles (at style_side), for the per-style ratios

    RESUMABLE = (*LiteTrainConfig.RESUMABLE, "val_texture")
    pixel_weight: float = 10.0
    feature_weight: float = 1.0
    feature_layer: str = "relu2_1"
    style_layers: tuple[str, ...] = ("relu1_1", "relu2_1")
    style_weight: float = 10.0
    code_weight: float = 0.0
    adain_weight: float = 0.0  # content loss to the AdaIN target at relu4_1 (0: off)

    def validate(self) -> None:
        super().validate()
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
        if 0 < self.cache_pairs < self.batch_size:
            raise StylenormError(f"cache_pairs must be 0 (no cache) or >= batch_size; got "
                                 f"{self.cache_pairs}", params=("cache_pairs", "batch_size"))
        if self.style_side < BASE_SIDE:
            raise StylenormError(f"style_side must be >= {BASE_SIDE}; got {self.style_side}",
                                 params=("style_side",))
        if self.style_side != BASE_SIDE and not self.cache_pairs:
            raise StylenormError("style_side applies to the teacher cache (cache_pairs > 0)",
                                 params=("style_side", "cache_pairs"))
        if self.add_caches and not self.cache_pairs:
            raise StylenormError("add_caches needs a cache of its own (cache_pairs > 0)",
                                 params=("add_caches", "cache_pairs"))

    def cache_folder(self) -> Path:
        return Path(self.cache) if self.cache else Path(self.out) / "teacher-cache"

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


def ratio_set(config: DistillConfig, validation, teacher, encoder: VGGEncoder,
              device: torch.device) -> RatioSet | None:
    """The validation pairs and ``config.val_texture``'s styles (decoded at their own shorter
    side up to ``style_side``, centre crops: texture at the scale training sees it), with the
    teacher's style loss on each."""
    if validation is None:
        return None
    contents, styles = validation
    names = [p.name for p in find_images(config.val_style, "val-style")][: styles.shape[0]]
    texture: list[torch.Tensor] = []
    if config.val_texture:
        paths = find_images(config.val_texture, "val-texture")[: config.val_count]
        for path in paths:
            side = decode_side(path, max(config.crop_size, BASE_SIDE), config.style_side)
            texture.append(load_image(path, size=side).rgb)
            names.append(path.name)
    if texture:
        crops = [center_crop(t, [config.crop_size]) for t in texture]
        styles = torch.cat([styles, torch.cat(crops).to(device)])
        contents = torch.cat([contents, contents[torch.arange(len(texture)) % len(contents)]])
    encode = FrozenEncoder(encoder)
    with torch.no_grad():
        teacher_losses = pair_style_losses(encode, teacher_output(teacher, contents, styles),
                                           styles)
    return RatioSet(contents, styles, names, len(texture), teacher_losses.clamp_min(1e-8))


class DistillTask(LiteTask):
    """The lite student, the frozen VGG loss network and the cached teacher outputs."""

    def __init__(self, config: DistillConfig, encoder, model: LiteModel, samples, validation,
                 teacher_outputs: dict[str, torch.Tensor],
                 ratio_set: RatioSet | None = None) -> None:
        super().__init__(config, encoder, model, samples, validation)
        self.teacher_outputs = teacher_outputs  # "samples", "validation": (N, 3, S, S)
        self.ratio_set = ratio_set
        if config.code_weight:  # a submodule, so that checkpoints, resume and the EMA hold it;
            # LiteTask.export leaves it out (TRAINING_ONLY)
            model.code_probe = nn.Linear(2 * self.probed_channels(),
                                         2 * sum(TAP_CHANNELS[layer]
                                                 for layer in config.style_layers))

    def probed_channels(self) -> int:
        """The code's channels the probe reads: the deep level's if there is one, else all."""
        config = self.network.config
        return config.style_deep or sum(config.widths)

    def code_loss(self, code, means: dict, stds: dict) -> torch.Tensor:
        """How far the probe's reading of the code is from the style's VGG statistics."""
        levels = slice(-1, None) if self.network.config.style_deep else slice(None)
        stats = torch.cat([t.flatten(1) for t in (*code.means[levels], *code.stds[levels])], 1)
        wanted = torch.cat([means[layer].flatten(1) for layer in self.config.style_layers]
                           + [stds[layer].flatten(1) for layer in self.config.style_layers], 1)
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

    def losses(self, batch: list[torch.Tensor], iteration: int) -> dict[str, torch.Tensor]:
        content, style, target, *stats = batch
        config = self.config
        code = self.network.style_code(style)
        output = self.network(content, code)
        feats = self.encode(output, config.deepest_layer())
        means, stds = stats_dicts(stats)
        loss_p = (output.float() - target).abs().mean()
        loss_s = sum(mean_std_target_loss(feats[layer], means[layer], stds[layer])
                     for layer in config.style_layers)
        losses = {"pixel": loss_p, "style": loss_s}
        total = config.pixel_weight * loss_p + config.style_weight * loss_s
        if config.feature_weight:
            with torch.no_grad():
                wanted = self.encode(target, config.feature_layer)[config.feature_layer]
            loss_f = F.mse_loss(feats[config.feature_layer].float(), wanted.float())
            losses["feature"] = loss_f
            total = total + config.feature_weight * loss_f
        if config.code_weight:
            losses["code"] = self.code_loss(code, means, stds)
            total = total + config.code_weight * losses["code"]
        if config.adain_weight:
            losses["adain"] = self.adain_loss(content, feats[ADAIN_LAYER], means, stds)
            total = total + config.adain_weight * losses["adain"]
        losses["identity"] = self.identity_loss(content)
        losses["total"] = total + config.identity_weight * losses["identity"]
        return losses

    def validation_losses(self) -> dict[str, torch.Tensor] | None:
        if self.validation is None:
            return None
        content, style = self.validation
        output = self.network(content, self.network.style_code(style)).float()
        measured = self._losses(content, style)
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
            content, style = ratios.contents[-ratios.texture_count:], ratios.styles[
                -ratios.texture_count:]
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

    def sample_rows(self) -> list[list[torch.Tensor]]:
        contents, styles = self.samples
        output = self.network(contents, self.network.style_code(styles)).float().clamp(0, 1)
        teacher = self.teacher_outputs["samples"]
        return [[contents[i], styles[i], teacher[i], output[i]]
                for i in range(contents.shape[0])]


def train_distill(config: DistillConfig, *, resume: bool = False, progress: bool = True,
                  init: str | None = None) -> TrainResult:
    """Build (or reuse) the teacher cache, then train the lite student on it."""
    refuse_in_job("stylenorm train lite --teacher", "every rank would build the teacher cache")
    device, contents, styles = find_inputs(config)
    encoder, encoder_meta = load_frozen_encoder(config.encoder)
    teacher_dtype = resolve_dtype("auto", device)
    teacher, teacher_sha = load_teacher(config.teacher, device, teacher_dtype)
    cache = None
    if config.cache_pairs:
        spec = CacheSpec(teacher=Path(config.teacher).name, teacher_sha256=teacher_sha,
                         encoder_sha256=encoder_meta["encoder_sha256"],
                         crop_size=config.crop_size, pairs=config.cache_pairs, seed=config.seed,
                         contents=len(contents), styles=len(styles),
                         style_side=config.style_side)
        stats_encoder = encoder.to(device, teacher_dtype)
        cache = build_teacher_cache(config.cache_folder(), spec, teacher, stats_encoder,
                                    contents, styles, progress=progress)
        if config.add_caches:
            cache = CachePool.load(cache, config.add_caches)
    encoder.float()
    torch.manual_seed(config.seed)
    model = LiteModel(config.lite_config())
    count = config.sample_count
    samples = paired(validation_images(contents, config.crop_size, count, device),
                     validation_images(styles, config.crop_size, count, device))
    validation = validation_pairs(config, device)
    outputs = {"samples": teacher_output(teacher, *samples)}
    if validation is not None:
        outputs["validation"] = teacher_output(teacher, *validation)
    ratios = ratio_set(config, validation, teacher, encoder, device)
    task = DistillTask(config, encoder, model, samples, validation, outputs, ratios)
    if init is not None and not resume:
        start_from(task.network, init, "lite", complete=grown_state)
    if cache is None:  # the teacher runs on every batch: crops on the device, statistics in fp32
        data = OnlineTeacherData(crop_data(config, device, [contents, styles]), teacher,
                                 load_frozen_encoder(config.encoder)[0].to(device))
    else:
        del teacher
        data = CacheData(cache, config.batch_size, config.seed, device)
    provenance = {"trained_with": "stylenorm train lite --teacher", **encoder_meta,
                  "teacher": Path(config.teacher).name, "teacher_sha256": teacher_sha,
                  "teacher_pairs": len(cache) if cache is not None else "every batch (no cache)",
                  "teacher_caches": [config.cache_folder().name,
                                     *(Path(f).name for f in config.add_caches)]
                  if cache is not None else [],
                  "content_images": len(contents),
                  "style_images": len(styles), "init": Path(init).name if init else None}
    return fit(task, config, data, resume=resume, progress=progress, provenance=provenance)
