"""The settings of ``stylenorm tune`` (:class:`TuneConfig`) and the inputs they name, all
checked before any work (:func:`check_inputs`: the style image, the photos, the name to install
under, the lite model to start from); the photos held out for the figures
(:func:`held_out`), and random crops of the others (:class:`PhotoCrops`)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from ..choices import LrSchedule
from ..errors import StylenormError
from ..io.images import load_image
from ..models.lite import LiteModel
from .inputs import find_images

__all__ = ["PhotoCrops", "TuneConfig", "check_inputs", "held_out", "spread"]

CROP_POOL = 48  # photos that crops are drawn from: each is stylised once, when first drawn


LR_SCHEDULES = tuple(schedule.value for schedule in LrSchedule)


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
    lr: float = 3e-4  # 1e-4: (content, style) 1.33x, 0.97x the teacher's on a drawing; 3e-4:
    #                   1.32x, 0.92x (docs/tune.md)
    lr_schedule: str = "constant"  # or "cosine": from lr down to nothing over the budget
    pixel_weight: float = 3.0
    feature_weight: float = 1.0
    deep_feature_weight: float = 0.0  # the same distance at relu4_1, the layer the figures use
    style_weight: float = 5.0  # at the start; steered toward style_target as validation goes
    style_target: float = 0.95  # the style loss aimed at, over the teacher's (0: weight fixed)
    adain_weight: float = 3.0  # 1 gave (style, content) 0.81x, 1.53x the teacher's; 4: 1.08x, 1.40x
    identity_weight: float = 20.0
    ema: float = 0.98  # decay of the weights' moving average, checked and installed (0: off)
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
        if self.lr <= 0 or min(self.pixel_weight, self.feature_weight, self.deep_feature_weight,
                               self.style_weight, self.style_target,
                               self.adain_weight, self.identity_weight) < 0:
            raise StylenormError("--lr must be > 0, the loss weights and --style-target >= 0")
        if not 0.0 <= self.ema < 1.0:
            raise StylenormError(f"--ema must be in [0, 1); got {self.ema}")
        if self.lr_schedule not in LR_SCHEDULES:
            raise StylenormError(f"--lr-schedule must be one of {', '.join(LR_SCHEDULES)}; "
                                 f"got {self.lr_schedule!r}")


class PhotoCrops:
    """Random crops of the content photos, each with the same window of the teacher's
    stylisation of the whole photo (what the user sees when stylising at ``size``). Up to
    ``pool`` photos spread over the folder take part; each is decoded at ``size`` shorter side
    and stylised by ``render`` once, when first drawn, and kept (in half precision), so a step
    pays for neither again."""

    def __init__(self, paths: list[Path], size: int, crop: int, seed: int,
                 render: Callable[[torch.Tensor], torch.Tensor], pool: int = CROP_POOL) -> None:
        self.paths, self.size, self.crop, self.render = spread(paths, pool), size, crop, render
        self.rng = np.random.default_rng(seed)
        self.kept: dict[Path, tuple[torch.Tensor, torch.Tensor]] = {}

    def _photo(self, path: Path) -> tuple[torch.Tensor, torch.Tensor]:
        """(photo, teacher's rendering), float16 on the CPU (``render`` returns it there),
        decoded and rendered on first use."""
        if path not in self.kept:
            photo = load_image(path, self.size).rgb
            with torch.no_grad():
                rendered = self.render(photo)
            self.kept[path] = photo.half(), rendered.half()
        return self.kept[path]

    def batch(self, count: int) -> tuple[torch.Tensor, torch.Tensor]:
        """``count`` random windows, mirrored at random: (photo crops, teacher crops), float32."""
        crops, wanted = [], []
        while len(crops) < count:
            path = self.paths[int(self.rng.integers(len(self.paths)))]
            try:
                photo, rendered = self._photo(path)
            except StylenormError:  # a header that opened, a body that does not decode
                if len(self.paths) == 1:
                    raise
                self.paths.remove(path)
                continue
            h, w = photo.shape[-2:]
            top = int(self.rng.integers(h - self.crop + 1))
            left = int(self.rng.integers(w - self.crop + 1))
            flip = self.rng.random() < 0.5
            for image, into in ((photo, crops), (rendered, wanted)):
                window = image[..., top:top + self.crop, left:left + self.crop].float()
                into.append(window.flip(-1) if flip else window)
        return torch.cat(crops), torch.cat(wanted)


def spread(items: list, count: int, offset: float = 0.0) -> list:
    """At most ``count`` of ``items``, evenly spread over them (all when there are no more):
    the one at ``offset`` (0..1) of each of ``count`` equal stretches."""
    if len(items) <= count:
        return list(items)
    step = len(items) / count
    return [items[int((i + offset) * step)] for i in range(count)]


def _shorter_side(path: Path) -> int:
    """The shorter side in px of the image at ``path`` from its header alone (a quick check,
    before any decoding), or 0 when Pillow cannot read it."""
    try:
        with Image.open(path) as image:
            return min(image.size)
    except (OSError, ValueError):
        return 0


def check_inputs(config: TuneConfig):
    """Everything that can be refused, before any work: the style image, the photos, the
    name, the init model and the teacher. Also how many readable photos are smaller than
    ``content_size`` (upscaled, so soft: a style learnt on soft photos did not carry over to
    sharp ones in docs/tune.md)."""
    from ..hub.store import store_path
    from ..hub.zoo import file_sha256, load_model

    style_path = Path(config.style)
    style = load_image(style_path, config.style_size).rgb
    photos = find_images(config.content, "content")
    sides = {p: _shorter_side(p) for p in photos}  # headers only: decoding is the crops' job
    readable = [p for p, side in sides.items() if side]
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
    small = sum(sides[p] < config.content_size for p in readable)
    return style, file_sha256(style_path), readable, target, student, small


def held_out(photos: list[Path], count: int) -> tuple[list[Path], list[Path]]:
    """(training, validation) photos: ``count`` spread over the folder are held out when there
    are at least three times as many; otherwise validation uses training photos."""
    if len(photos) < 3 * count:
        return photos, photos[:count]
    held = set(spread(range(len(photos)), count, offset=0.5))
    return [p for i, p in enumerate(photos) if i not in held], [photos[i] for i in sorted(held)]
