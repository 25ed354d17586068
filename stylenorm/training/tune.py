"""One style at the teacher's quality and lite speed: ``stylenorm tune STYLE --content DIR --name
NAME``.

A lite model (the shipped default, or ``init``) is fine-tuned for a time budget on one style
image over the user's own photos (the frames of their video, the folder they will batch), and
installed under ``name``. With one style the targets are exact: the teacher's code is the
style's at ``style_size`` (the size stylisation uses), and the student's code is computed from
the same image, as at inference. Each step draws a batch of content crops c (``crop_size``
squares of the photos at shorter side ``content_size``, so their detail has the scale of a
stylised photo), the teacher stylises them (t) and the student's output o = m(c, code(s)) is
pulled toward t and toward the evaluation's own targets, with f the frozen VGG loss network::

    L = pixel_weight * mean|o - t| + feature_weight * ||f(o)_relu3_1 - f(t)_relu3_1||^2
      + style_weight * sum_{l = relu1_1..relu4_1} ||mu(f_l(o)) - mu_l(s)||^2
                                                  + ||sigma(f_l(o)) - sigma_l(s)||^2
      + adain_weight * ||f(o)_relu4_1 - AdaIN(f(c)_relu4_1, s)||^2
      + identity_weight * ||m(c, code(c)) - c||^2          (so that alpha < 1 still works)

Every ``val_every_s`` seconds the student is measured on held-out photos at ``content_size``
against the teacher on the same photos: its style and content loss as multiples of the
teacher's, the figures the progress bar shows and the model's provenance keeps. Ctrl-C stops
early and still installs what was learnt.
"""

from __future__ import annotations

import copy
import math
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image
from tqdm.auto import tqdm

from ..errors import StylenormError
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
from .data import find_images
from .objective import FrozenEncoder
from .teacher import Teacher

__all__ = ["TuneConfig", "TuneResult", "tune"]

FEATURE_LAYER = "relu3_1"
ADAIN_LAYER = "relu4_1"


@dataclass
class TuneConfig:
    style: str
    content: str
    name: str
    teacher: str = "adain"
    init: str = "lite"  # an installed lite model's name or a file
    encoder: str = "vgg19-normalised"  # the loss network
    minutes: float = 10.0
    steps: int = 0  # stop after this many steps too (0: the time alone decides)
    batch_size: int = 4
    crop_size: int = 256
    content_size: int = 512  # photos' shorter side before cropping, and for validation
    style_size: int = 512  # the style's shorter side, as stylisation uses it
    lr: float = 1e-4
    pixel_weight: float = 3.0
    feature_weight: float = 1.0
    style_weight: float = 5.0
    adain_weight: float = 3.0  # 1 gave (style, content) 0.81x, 1.53x the teacher's; 4: 1.08x, 1.40x
    identity_weight: float = 20.0
    val_count: int = 2  # photos held out (when the folder has at least 3 times as many)
    val_every_s: float = 60.0
    seed: int = 0
    device: str = "auto"
    precision: str = "auto"
    overwrite: bool = False

    def validate(self) -> None:
        if not self.minutes > 0 or self.steps < 0:
            raise StylenormError(f"--minutes must be > 0 and --steps >= 0; got "
                                 f"{self.minutes}, {self.steps}")
        for name in ("batch_size", "crop_size", "content_size", "style_size", "val_count"):
            if getattr(self, name) < 1:
                raise StylenormError(f"--{name.replace('_', '-')} must be >= 1; "
                                     f"got {getattr(self, name)}")
        if self.crop_size < 16 or self.crop_size > self.content_size:
            raise StylenormError(f"--crop-size must be in [16, --size {self.content_size}]; "
                                 f"got {self.crop_size}")
        if self.lr <= 0 or min(self.pixel_weight, self.feature_weight, self.style_weight,
                               self.adain_weight, self.identity_weight) < 0:
            raise StylenormError("--lr must be > 0 and the loss weights >= 0")


@dataclass
class TuneResult:
    path: Path
    iterations: int
    seconds: float
    stopped: bool  # by Ctrl-C, before the time was up
    figures: dict = field(default_factory=dict)  # the last validation: ratios to the teacher
    first_figures: dict = field(default_factory=dict)  # the same before tuning


class _Photos:
    """Random crops of the content photos, decoded at ``size`` shorter side when drawn."""

    def __init__(self, paths: list[Path], size: int, crop: int, seed: int) -> None:
        self.paths, self.size, self.crop = list(paths), size, crop
        self.rng = np.random.default_rng(seed)

    def batch(self, count: int) -> torch.Tensor:
        crops = []
        while len(crops) < count:
            index = int(self.rng.integers(len(self.paths)))
            try:
                image = load_image(self.paths[index], self.size).rgb
            except StylenormError:  # a header that opened, a body that does not decode
                if len(self.paths) == 1:
                    raise
                del self.paths[index]
                continue
            h, w = image.shape[-2:]
            top = int(self.rng.integers(h - self.crop + 1))
            left = int(self.rng.integers(w - self.crop + 1))
            crop = image[..., top:top + self.crop, left:left + self.crop]
            crops.append(crop.flip(-1) if self.rng.random() < 0.5 else crop)
        return torch.cat(crops)


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


def _opens(path: Path) -> bool:
    """Whether Pillow reads ``path``'s header (a quick check, before any decoding)."""
    try:
        with Image.open(path):
            return True
    except (OSError, ValueError):
        return False


def _check_inputs(config: TuneConfig):
    """Everything that can be refused, before any work: the style image, the photos, the
    name, the init model and the teacher."""
    from ..hub.store import store_path
    from ..hub.zoo import file_sha256, load_model

    style_path = Path(config.style)
    style = load_image(style_path, config.style_size).rgb
    photos = find_images(config.content, "content")
    readable = [p for p in photos if _opens(p)]  # headers only: decoding is the crops' job
    if not readable:
        raise StylenormError(f"--content {config.content}: none of its {len(photos)} images "
                             "can be read")
    target = store_path(config.name)
    if target.exists() and not config.overwrite:
        raise StylenormError(f"--name {config.name}: a model of that name is installed "
                             f"({target}); choose another name or add --overwrite")
    student = load_model(config.init)
    if not isinstance(student, LiteModel):
        raise StylenormError(f"--init {config.init}: a {getattr(student, 'kind', '?')!r} "
                             "model; tune starts from a lite model")
    return style, file_sha256(style_path), readable, target, student


def _held_out(photos: list[Path], count: int) -> tuple[list[Path], list[Path]]:
    """(training, validation) photos: ``count`` spread over the folder are held out when there
    are at least three times as many; otherwise validation uses training photos."""
    if len(photos) < 3 * count:
        return photos, photos[:count]
    step = len(photos) / count
    held = {int(i * step + step / 2) for i in range(count)}
    return [p for i, p in enumerate(photos) if i not in held], [photos[i] for i in sorted(held)]


def tune(config: TuneConfig, *, progress: bool = True) -> TuneResult:
    """Fine-tune a lite model on one style for ``config.minutes`` and install it."""
    from ..hub.files import save_weights
    from ..hub.zoo import load_frozen_encoder

    config.validate()
    style, style_sha, photos, target_path, student = _check_inputs(config)
    device = resolve_device(config.device)
    dtype = training_dtype(config.precision, device)
    teacher = Teacher(config.teacher, device, resolve_dtype("auto", device))
    encoder, encoder_meta = load_frozen_encoder(config.encoder)
    measuring = FrozenEncoder(encoder)  # the figures, in fp32 as the evaluation measures
    measuring.prepare(device, torch.float32, torch.contiguous_format)
    encode = FrozenEncoder(copy.deepcopy(encoder))  # the losses, at the training precision
    encode.prepare(device, dtype, torch.channels_last)
    torch.manual_seed(config.seed)

    style = style.to(device)
    measure = _Measure(measuring, style)
    teacher_code = teacher.codes([style])
    train_photos, val_photos = _held_out(photos, config.val_count)
    val = [load_image(p, config.content_size, crop=True).rgb.to(device) for p in val_photos]
    val_batch = torch.cat(val)
    teacher_scores = measure.scores(teacher.outputs(val_batch, teacher_code), val_batch)
    crops = _Photos(train_photos, config.content_size, config.crop_size, config.seed)

    model = student.float().to(device, memory_format=torch.channels_last).train()
    for parameter in model.parameters():
        parameter.requires_grad_(True)
    optimizer = torch.optim.Adam(model.parameters(), lr=config.lr)

    def figures() -> dict:
        model.eval()
        with torch.no_grad(), autocast(device, dtype):
            code = model.style_code(style)
            outputs = torch.cat([model(v, code).float() for v in val])
        model.train()
        style_loss, content = measure.scores(outputs, val_batch)
        return {"style_ratio": style_loss / teacher_scores[0],
                "content_ratio": content / teacher_scores[1],
                "style_loss": style_loss, "content_loss": content,
                "teacher_style_loss": teacher_scores[0],
                "teacher_content_loss": teacher_scores[1]}

    def step(content: torch.Tensor) -> None:
        content = content.contiguous(memory_format=torch.channels_last)
        wanted = teacher.outputs(content, teacher_code)
        with autocast(device, dtype):
            code = model.style_code(style)
            output = model(content, code.take([0] * content.shape[0])).float()
            feats = encode(output, ADAIN_LAYER)
            total = config.pixel_weight * (output - wanted).abs().mean()
            total = total + config.style_weight * measure.style_loss(feats)
            total = total + config.adain_weight * measure.content_loss(feats, content, encode)
            if config.feature_weight:
                with torch.no_grad():
                    goal = encode(wanted, FEATURE_LAYER)[FEATURE_LAYER]
                total = total + config.feature_weight * F.mse_loss(
                    feats[FEATURE_LAYER].float(), goal.float())
            if config.identity_weight:
                own = content[: max(1, content.shape[0] // 2)]
                rebuilt = model(own, model.style_code(own)).float()
                total = total + config.identity_weight * F.mse_loss(rebuilt, own)
        optimizer.zero_grad(set_to_none=True)
        total.backward()
        optimizer.step()

    first = current = figures()
    budget = config.minutes * 60
    start = last_val = time.perf_counter()
    iterations, stopped = 0, False
    bar = tqdm(total=math.ceil(budget), unit="s", disable=not on_terminal(progress), desc="tune",
               bar_format="{desc}: {bar} {elapsed} of the time, {remaining} left{postfix}")
    with bar:
        bar.set_postfix_str(_postfix(0, current))
        try:
            while (time.perf_counter() - start < budget
                   and not (config.steps and iterations >= config.steps)):
                step(crops.batch(config.batch_size).to(device))
                iterations += 1
                now = time.perf_counter()
                if now - last_val >= config.val_every_s:
                    current, last_val = figures(), time.perf_counter()
                bar.set_postfix_str(_postfix(iterations, current), refresh=False)
                bar.update(min(math.ceil(budget), round(now - start)) - bar.n)
        except KeyboardInterrupt:
            stopped = True
        seconds = time.perf_counter() - start
    current = figures()
    provenance = {
        "trained_with": "stylenorm tune", "init": Path(config.init).name,
        "init_provenance": getattr(student.weights_meta, "provenance", {}),
        "style_image": Path(config.style).name, "style_sha256": style_sha,
        **teacher.provenance(), **encoder_meta,
        "content_images": len(train_photos), "held_out_photos": len(val_photos),
        "held_out_are_training_photos": val_photos[0] in train_photos,
        "iterations": iterations, "seconds": round(seconds, 1),
        "stopped_early": stopped, "processor": processor_name(device),
        "precision": str(dtype).removeprefix("torch."),
        "settings": {k: v for k, v in asdict(config).items()
                     if k not in ("style", "content", "name", "overwrite")},
        "validation_before": first, "validation": current,
    }
    model.eval()
    path = save_weights(target_path, model.state_dict(), LiteModel.kind, model.config.to_dict(),
                        provenance, dtype=torch.float16)
    return TuneResult(path, iterations, seconds, stopped, current, first)


def _postfix(iterations: int, figures: dict) -> str:
    return (f"{iterations} it, style {figures['style_ratio']:.2f}x, content "
            f"{figures['content_ratio']:.2f}x the teacher's")
