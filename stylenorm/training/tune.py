"""One style at the teacher's quality and lite speed: ``stylenorm tune STYLE --content DIR --name
NAME``.

A lite model (the shipped default, or ``init``) is fine-tuned for a time budget on one style
image over the user's own photos (the frames of their video, the folder they will batch), and
installed under ``name``. With one style the targets are exact: the teacher's code is the
style's at ``style_size`` (the size stylisation uses), and the student's code is computed from
the same image, as at inference. Each step draws a batch of content crops c (``crop_size``
squares of the photos at shorter side ``content_size``, so their detail has the scale of a
stylised photo), t is the same window of the teacher's stylisation of the whole photo (each
photo is stylised once, when first drawn: :class:`PhotoCrops`), and the student's output
o = m(c, code(s)) is pulled toward t and toward the evaluation's own targets, with f the frozen
VGG loss network::

    L = pixel_weight * mean|o - t| + feature_weight * ||f(o)_relu3_1 - f(t)_relu3_1||^2
      + deep_feature_weight * ||f(o)_relu4_1 - f(t)_relu4_1||^2
      + style_weight * sum_{l = relu1_1..relu4_1} ||mu(f_l(o)) - mu_l(s)||^2
                                                  + ||sigma(f_l(o)) - sigma_l(s)||^2
      + adain_weight * ||f(o)_relu4_1 - AdaIN(f(c)_relu4_1, s)||^2
      + identity_weight * ||m(c', code(c')) - c'||^2      (so that alpha < 1 still works)

where c' is half of the crops (at half their size the step was a fifth cheaper, but a tuned
model's rebuild of a 512 px photo from its own code fell about 2 dB further).

Every ``val_every_s`` seconds the student is measured on held-out photos at ``content_size``
against the teacher on the same photos: its style and content loss as multiples of the
teacher's, the figures the progress bar shows and the model's provenance keeps. With
``ema`` the weights measured and installed are the moving average of the steps' (a step of 4
crops at this learning rate moves the style ratio by a tenth or two from one check to the next;
the average does not), so each check reads a steadier model. With ``style_target`` (default
0.95) each measurement also steers the style weight: it is multiplied by (style ratio /
style_target), within ``STEER_RANGE`` times ``style_weight`` either way, so a
style that stays behind the teacher's gets more weight and one that has passed it gives the
rest of the time to the content (the same settings land at different points of the trade-off
from different starting models and styles). With ``lr_schedule`` ``cosine`` the learning rate
falls from ``lr`` to nothing over the budget (time, or ``steps`` when that ends it first).
Ctrl-C stops early and still installs what was learnt.
"""

from __future__ import annotations

import copy
import math
import time
from collections.abc import Callable
from contextlib import nullcontext
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from tqdm.auto import tqdm

from ..io.images import load_image
from ..models.lite import LiteModel
from ..models.vgg import TAPS
from ..nn.conditional import adain_with_stats
from ..nn.losses import content_loss, mean_std_target_loss
from ..nn.statistics import channel_mean_std
from ..runtime import (
    autocast,
    on_terminal,
    processor_name,
    resolve_device,
    resolve_dtype,
    training_dtype,
)
from .averaging import WeightAverage
from .objective import FrozenEncoder
from .teacher import Teacher
from .tune_inputs import PhotoCrops, TuneConfig, check_inputs, held_out

__all__ = ["TuneConfig", "TuneResult", "scheduled_lr", "tune"]

FEATURE_LAYER = "relu3_1"
ADAIN_LAYER = "relu4_1"
STEER_RANGE = 4.0  # the steered style weight stays within style_weight / 4 .. style_weight * 4
CHECK_FIELDS = ("step", "seconds", "style_ratio", "content_ratio", "style_weight")


def scheduled_lr(base: float, done: float, schedule: str) -> float:
    """The learning rate when the fraction ``done`` (0..1) of the budget is spent: ``base``
    throughout (``constant``), or ``base * (1 + cos(pi * done)) / 2`` (``cosine``). In ten
    minutes on the drawing of docs/tune.md, cosine lost on both figures to constant."""
    if schedule == "constant":
        return base
    return base * (1 + math.cos(math.pi * min(max(done, 0.0), 1.0))) / 2


def steered_style_weight(current: float, base: float, style_ratio: float, target: float
                         ) -> float:
    """The style weight after a measurement: ``current`` times (style ratio / target), kept
    within ``base / STEER_RANGE .. base * STEER_RANGE``; ``current`` when ``target`` is 0."""
    if not target:
        return current
    return min(max(current * style_ratio / target, base / STEER_RANGE), base * STEER_RANGE)


@dataclass
class TuneResult:
    path: Path
    iterations: int
    seconds: float
    stopped: bool  # by Ctrl-C, before the time was up
    figures: dict = field(default_factory=dict)  # the last validation: ratios to the teacher
    first_figures: dict = field(default_factory=dict)  # the same before tuning
    checks: list = field(default_factory=list)  # every check: CHECK_FIELDS, in order


class _Measure:
    """The loss network's view of the one style: its statistics, and the losses of outputs."""

    def __init__(self, encode: FrozenEncoder, style: torch.Tensor) -> None:
        self.encode = encode
        with torch.no_grad():
            feats = encode(style, ADAIN_LAYER)
            self.stats = {layer: channel_mean_std(feats[layer].float()) for layer in TAPS}

    def style_loss(self, feats: dict) -> torch.Tensor:
        return sum(mean_std_target_loss(feats[layer].float(), *self.stats[layer])
                   for layer in TAPS)

    def content_loss(self, feats: dict, content: torch.Tensor,
                     encode: FrozenEncoder | None = None) -> torch.Tensor:
        """The content loss to the AdaIN target, the content encoded by ``encode`` (default:
        the measuring encoder)."""
        with torch.no_grad():
            content_feats = (encode or self.encode)(content, ADAIN_LAYER)[ADAIN_LAYER]
            target = adain_with_stats(content_feats.float(), *self.stats[ADAIN_LAYER])
        return content_loss(feats[ADAIN_LAYER].float(), target)

    def scores(self, outputs: torch.Tensor, contents: torch.Tensor) -> tuple[float, float]:
        """Mean (style loss, content loss) of each output to its content, one at a time."""
        style, content = [], []
        with torch.no_grad():
            for output, photo in zip(outputs, contents, strict=True):
                feats = self.encode(output[None].clamp(0, 1), ADAIN_LAYER)
                style.append(float(self.style_loss(feats)))
                content.append(float(self.content_loss(feats, photo[None])))
        return float(np.mean(style)), float(np.mean(content))


class _Tuner:
    """A lite model being tuned on one style: the teacher and the loss network it learns from,
    the held-out photos it is measured on (against the teacher), one step, and the figures."""

    def __init__(self, config: TuneConfig, style: torch.Tensor, photos: list[Path],
                 student: LiteModel, device: torch.device, dtype: torch.dtype) -> None:
        from ..hub.zoo import load_frozen_encoder

        self.config, self.device, self.dtype = config, device, dtype
        self.teacher = Teacher(config.teacher, device, resolve_dtype("auto", device))
        encoder, self.encoder_meta = load_frozen_encoder(config.encoder)
        measuring = FrozenEncoder(encoder)  # the figures, in fp32 as the evaluation measures
        measuring.prepare(device, torch.float32, torch.contiguous_format)
        self.encode = FrozenEncoder(copy.deepcopy(encoder))  # the losses, at the training precision
        self.encode.prepare(device, dtype, torch.channels_last)
        torch.manual_seed(config.seed)
        self.style = style.to(device)
        self.measure = _Measure(measuring, self.style)
        self.teacher_code = self.teacher.codes([self.style])
        self._hold_out(photos)
        self.model = student.float().to(device, memory_format=torch.channels_last).train()
        for parameter in self.model.parameters():
            parameter.requires_grad_(True)
        self.optimizer = torch.optim.Adam(self.model.parameters(), lr=config.lr)
        self.average = WeightAverage(self.model, config.ema) if config.ema else None
        self.style_weight = config.style_weight  # steered by :meth:`steer`
        self.checks: list[list[float]] = []  # CHECK_FIELDS of each check, by :meth:`record`

    def _hold_out(self, photos: list[Path]) -> None:
        """The held-out photos, the teacher's scores on them, and crops of the others."""
        config = self.config
        self.train_photos, self.val_photos = held_out(photos, config.val_count)
        self.val = [load_image(p, config.content_size, crop=True).rgb.to(self.device)
                    for p in self.val_photos]
        self.val_batch = torch.cat(self.val)
        self.teacher_scores = self.measure.scores(
            self.teacher.outputs(self.val_batch, self.teacher_code), self.val_batch)
        self.crops = PhotoCrops(self.train_photos, config.content_size, config.crop_size,
                                config.seed, self._render)

    def _render(self, photo: torch.Tensor) -> torch.Tensor:
        """The teacher's stylisation of one whole photo, on the CPU."""
        return self.teacher.outputs(photo.to(self.device), self.teacher_code).cpu()

    def averaged(self):
        """A context in which ``self.model`` holds the weights that are checked and installed:
        their moving average (``ema``), or the weights themselves."""
        return self.average.applied(self.model) if self.average else nullcontext(self.model)

    def figures(self) -> dict:
        """The (averaged) student's style and content loss on the held-out photos, and their
        ratios to the teacher's."""
        with self.averaged() as model, torch.no_grad(), autocast(self.device, self.dtype):
            model.eval()
            code = model.style_code(self.style)
            outputs = torch.cat([model(v, code).float() for v in self.val])
            model.train()
        style_loss, content = self.measure.scores(outputs, self.val_batch)
        teacher = self.teacher_scores
        return {"style_ratio": style_loss / teacher[0], "content_ratio": content / teacher[1],
                "style_loss": style_loss, "content_loss": content,
                "teacher_style_loss": teacher[0], "teacher_content_loss": teacher[1]}

    def loss(self, content: torch.Tensor, wanted: torch.Tensor) -> torch.Tensor:
        """The weighted sum of the module doc's terms on a batch of content crops and the
        same windows of the teacher's renderings."""
        config, model, measure, encode = self.config, self.model, self.measure, self.encode
        with autocast(self.device, self.dtype):
            code = model.style_code(self.style)
            output = model(content, code.take([0] * content.shape[0])).float()
            feats = encode(output, ADAIN_LAYER)
            total = config.pixel_weight * (output - wanted).abs().mean()
            total = total + self.style_weight * measure.style_loss(feats)
            total = total + config.adain_weight * measure.content_loss(feats, content, encode)
            total = total + self._teacher_features_loss(feats, wanted)
            if config.identity_weight:
                own = content[: max(1, content.shape[0] // 2)]
                rebuilt = model(own, model.style_code(own)).float()
                total = total + config.identity_weight * F.mse_loss(rebuilt, own)
        return total

    def _teacher_features_loss(self, feats: dict, wanted: torch.Tensor) -> torch.Tensor | float:
        """The weighted distances of the output's VGG features to the teacher output's."""
        weights = {FEATURE_LAYER: self.config.feature_weight,
                   ADAIN_LAYER: self.config.deep_feature_weight}
        layers = [layer for layer, weight in weights.items() if weight]
        if not layers:
            return 0.0
        with torch.no_grad():
            goal = self.encode(wanted, layers[-1])
        return sum(weights[layer] * F.mse_loss(feats[layer].float(), goal[layer].float())
                   for layer in layers)

    def steer(self, figures: dict) -> None:
        """The style weight toward ``style_target``, from a measurement's style ratio."""
        self.style_weight = steered_style_weight(self.style_weight, self.config.style_weight,
                                                 figures["style_ratio"],
                                                 self.config.style_target)

    def record(self, step: int, seconds: float, figures: dict) -> None:
        """A check's figures and the style weight they left, for the provenance."""
        self.checks.append([step, round(seconds, 1), round(figures["style_ratio"], 4),
                            round(figures["content_ratio"], 4), round(self.style_weight, 4)])

    def step(self, batch: tuple[torch.Tensor, torch.Tensor], done: float = 0.0) -> None:
        """One optimiser step on a batch of (crops, the teacher's windows), ``done`` (0..1)
        of the budget spent."""
        for group in self.optimizer.param_groups:
            group["lr"] = scheduled_lr(self.config.lr, done, self.config.lr_schedule)
        content, wanted = (t.to(self.device) for t in batch)
        total = self.loss(content.contiguous(memory_format=torch.channels_last), wanted)
        self.optimizer.zero_grad(set_to_none=True)
        total.backward()
        self.optimizer.step()
        if self.average:
            self.average.update(self.model)


def _tune_for(tuner: _Tuner, first: dict, progress: bool) -> tuple[int, float, bool]:
    """Steps until the time (or ``steps``) is up or Ctrl-C; (steps, seconds, stopped early)."""
    config = tuner.config
    current, budget = first, config.minutes * 60
    start = last_val = time.perf_counter()
    iterations, stopped = 0, False
    bar = tqdm(total=math.ceil(budget), unit="s", disable=not on_terminal(progress), desc="tune",
               bar_format="{desc}: {bar} {elapsed} of the time, {remaining} left{postfix}")
    with bar:
        bar.set_postfix_str(_postfix(0, current))
        try:
            while (time.perf_counter() - start < budget
                   and not (config.steps and iterations >= config.steps)):
                done = (time.perf_counter() - start) / budget
                if config.steps:
                    done = max(done, iterations / config.steps)
                tuner.step(tuner.crops.batch(config.batch_size), done)
                iterations += 1
                now = time.perf_counter()
                if now - last_val >= config.val_every_s:
                    current, last_val = tuner.figures(), time.perf_counter()
                    tuner.steer(current)
                    tuner.record(iterations, now - start, current)
                bar.set_postfix_str(_postfix(iterations, current), refresh=False)
                bar.update(min(math.ceil(budget), round(now - start)) - bar.n)
        except KeyboardInterrupt:
            stopped = True
        seconds = time.perf_counter() - start
    return iterations, seconds, stopped


def tune(config: TuneConfig, *, progress: bool = True,
         note: Callable[[str], None] | None = None) -> TuneResult:
    """Fine-tune a lite model on one style for ``config.minutes`` and install it. ``note`` is
    given one line of advice, if any, once the inputs are accepted."""
    from ..hub.files import save_weights

    config.validate()
    style, style_sha, photos, target_path, student, small = check_inputs(config)
    if small and note:
        note(f"note: {small} of the {len(photos)} photos in {config.content} are smaller than "
             f"--size {config.content_size} px on their shorter side; they are upscaled, and "
             "the style is learnt on softer pictures than sharp photos of that size")
    device = resolve_device(config.device)
    tuner = _Tuner(config, style, photos, student, device,
                   training_dtype(config.precision, device))
    first = tuner.figures()
    tuner.record(0, 0.0, first)
    iterations, seconds, stopped = _tune_for(tuner, first, progress)
    current = tuner.figures()
    tuner.record(iterations, seconds, current)
    provenance = {
        "trained_with": "stylenorm tune", "init": Path(config.init).name,
        "init_provenance": getattr(student.weights_meta, "provenance", {}),
        "style_image": Path(config.style).name, "style_sha256": style_sha,
        **tuner.teacher.provenance(), **tuner.encoder_meta,
        "content_images": len(tuner.train_photos), "held_out_photos": len(tuner.val_photos),
        "held_out_are_training_photos": tuner.val_photos[0] in tuner.train_photos,
        "iterations": iterations, "seconds": round(seconds, 1),
        "stopped_early": stopped, "processor": processor_name(device),
        "precision": str(tuner.dtype).removeprefix("torch."),
        "settings": {k: v for k, v in asdict(config).items()
                     if k not in ("style", "content", "name", "overwrite")},
        "validation_before": first, "validation": current,
        "style_weight_at_the_end": round(tuner.style_weight, 4),
        "checks": {"fields": list(CHECK_FIELDS), "rows": tuner.checks},
    }
    with tuner.averaged() as model:
        path = save_weights(target_path, model.eval().state_dict(), LiteModel.kind,
                            model.config.to_dict(), provenance, dtype=torch.float16)
    return TuneResult(path, iterations, seconds, stopped, current, first, tuner.checks)


def _postfix(iterations: int, figures: dict) -> str:
    return (f"{iterations} it, style {figures['style_ratio']:.2f}x, content "
            f"{figures['content_ratio']:.2f}x the teacher's")
