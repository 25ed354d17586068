"""The teacher's side of ``stylenorm train lite --teacher``: the teacher loaded and hashed once
(:class:`.teacher.Teacher`), its cache built or reused (:mod:`.teacher_cache`) or its outputs
made on every batch (``cache_pairs`` 0), the batches either way (:mod:`.teacher_batches`), its
outputs on the sample and validation pairs, the held-out styles whose ratios validation
reports, and the provenance it gives the model."""

from __future__ import annotations

from pathlib import Path

import torch
from torchvision.transforms.functional import center_crop

from ..io.images import load_image
from ..models.vgg import VGGEncoder
from ..runtime import resolve_dtype
from .config import TrainConfig
from .distill import Distillation, DistillSettings, RatioSet, pair_style_losses
from .inputs import crop_data, find_images
from .loop import load_frozen_encoder
from .objective import FrozenEncoder
from .teacher import Teacher, teacher_output
from .teacher_batches import CacheData, CachePool, OnlineTeacherData
from .teacher_cache import BASE_SIDE, CacheSpec, build_teacher_cache, decode_side

__all__ = ["LiteTeacher", "ratio_set"]


class LiteTeacher:
    """The teacher of a lite run whose config has ``distill`` (:class:`DistillSettings`), and its
    cache (None with ``cache_pairs`` 0). ``encoder`` (the loss network, loaded as
    ``encoder_meta`` says) measures the cached style statistics at the teacher's dtype."""

    def __init__(self, config: TrainConfig, device: torch.device, encoder: VGGEncoder,
                 encoder_meta: dict, contents: list[Path], styles: list[Path], *,
                 progress: bool = True) -> None:
        settings: DistillSettings = config.distill
        self.settings, self.device = settings, device
        dtype = resolve_dtype("auto", device)
        self.teacher: Teacher | None = Teacher(settings.teacher, device, dtype)
        self.named = self.teacher.provenance()  # its name and hash, kept when it is let go
        self.cache = None
        if settings.cache_pairs:
            spec = CacheSpec(teacher=self.teacher.name, teacher_sha256=self.teacher.sha256,
                             encoder_sha256=encoder_meta["encoder_sha256"],
                             crop_size=config.crop_size, pairs=settings.cache_pairs,
                             seed=config.seed, contents=len(contents), styles=len(styles),
                             style_side=settings.style_side,
                             style_jitter=settings.style_jitter)
            self.cache = build_teacher_cache(settings.cache_folder(config.out), spec,
                                             self.teacher.model, encoder.to(device, dtype),
                                             contents, styles, progress=progress)
            if settings.add_caches:
                self.cache = CachePool.load(self.cache, settings.add_caches)

    def distillation(self, config: TrainConfig, samples, validation, encoder: VGGEncoder
                     ) -> Distillation:
        """The loss terms, with the teacher's outputs on the ``samples`` and ``validation``
        pairs and the ratio set (``encoder``: the fp32 loss network)."""
        outputs = {"samples": teacher_output(self.teacher.model, *samples)}
        if validation is not None:
            outputs["validation"] = teacher_output(self.teacher.model, *validation)
        ratios = ratio_set(config, validation, self.teacher.model, encoder, self.device)
        return Distillation(self.settings, config.style_weight, outputs, ratios)

    def data(self, config: TrainConfig, contents: list[Path], styles: list[Path]):
        """The training batches: drawn from the cache (the teacher is let go), or crops the
        teacher stylises as they come, their statistics measured by an fp32 loss network."""
        if self.cache is None:
            return OnlineTeacherData(crop_data(config, self.device, [contents, styles]),
                                     self.teacher.model,
                                     load_frozen_encoder(config.encoder)[0].to(self.device))
        self.teacher = None
        return CacheData(self.cache, config.batch_size, config.seed, self.device)

    def provenance(self, config: TrainConfig) -> dict:
        """The teacher, its hash and the caches drawn from, for the model's metadata."""
        caches = [self.settings.cache_folder(config.out).name,
                  *(Path(f).name for f in self.settings.add_caches)]
        return {**self.named,
                "teacher_pairs": len(self.cache) if self.cache is not None
                else "every batch (no cache)",
                "teacher_caches": caches if self.cache is not None else []}


def ratio_set(config: TrainConfig, validation, teacher, encoder: VGGEncoder,
              device: torch.device) -> RatioSet | None:
    """The validation pairs and ``config.distill.val_texture``'s styles (decoded at their own
    shorter side up to ``style_side``, centre crops: texture at the scale training sees it),
    with the teacher's style loss on each."""
    if validation is None:
        return None
    contents, styles = validation
    settings: DistillSettings = config.distill
    names = [p.name for p in find_images(config.val_style, "val-style")][: styles.shape[0]]
    texture: list[torch.Tensor] = []
    if settings.val_texture:
        paths = find_images(settings.val_texture, "val-texture")[: config.val_count]
        for path in paths:
            side = decode_side(path, max(config.crop_size, BASE_SIDE), settings.style_side)
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
