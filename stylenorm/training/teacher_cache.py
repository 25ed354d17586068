"""Teacher outputs for distillation, computed once and kept on disk.

A distilled student learns to reproduce a teacher (an installed AdaIN model: VGG encoder plus a
decoder) on (content crop, style crop) pairs. Running the teacher costs about as much as a
perceptual-loss training step, so each pair is stylised once and cached::

    CACHE/spec.json              what the cache holds (teacher, its hash, crop size, seed, ...)
    CACHE/shard_00000.safetensors  ``shard_size`` pairs: uint8 ``content``, ``style``, ``target``
                                 (N, 3, S, S) and the style crop's VGG statistics
                                 ``mean.<layer>`` / ``std.<layer>`` (N, C_l) in float32

Pair ``i`` is drawn from a generator seeded by ``(seed, i)``: which content and style, and
where each is cropped. Shards are written atomically, so an interrupted build continues where
it stopped; a cache whose spec differs from the one asked for is refused, not mixed, unless it
differs only in holding fewer pairs: then it grows. Training draws its batches from one cache
or several (:mod:`.teacher_batches`).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file
from tqdm.auto import tqdm

from ..errors import ImageError, StylenormError
from ..io.atomic import atomic_write
from ..models.vgg import TAPS, VGGEncoder
from ..nn.statistics import channel_mean_std
from ..runtime import on_terminal
from .crops import CropConfig, crop_item, decode
from .style_jitter import jitter_style
from .teacher import teacher_output

__all__ = ["BASE_SIDE", "CacheSpec", "TeacherCache", "build_teacher_cache", "decode_side",
           "flat_stats", "spec_changes", "stats_dicts", "style_statistics"]

SPEC = "spec.json"
BASE_SIDE = 320  # shorter side of the contents (and, by default, the styles) before cropping


@dataclass
class CacheSpec:
    """What a cache holds; two builds with equal specs make equal caches."""

    teacher: str
    teacher_sha256: str
    encoder_sha256: str  # the loss network that measured the style statistics
    crop_size: int
    pairs: int
    seed: int
    contents: int
    styles: int
    shard_size: int = 64
    # Styles are decoded at their own shorter side, kept between BASE_SIDE (smaller ones are
    # enlarged to it) and this; BASE_SIDE (the default) resizes every style to BASE_SIDE.
    style_side: int = 320
    style_jitter: bool = False  # style crops turned and recoloured (:mod:`.style_jitter`)

    def shard_count(self) -> int:
        return -(-self.pairs // self.shard_size)


def shard_path(folder: Path, index: int) -> Path:
    return folder / f"shard_{index:05d}.safetensors"


def pair_choice(spec: CacheSpec, index: int) -> tuple[int, int, np.random.Generator]:
    """(content index, style index, generator for the crops) of pair ``index``."""
    rng = np.random.default_rng([spec.seed, index, 7])
    return int(rng.integers(spec.contents)), int(rng.integers(spec.styles)), rng


def decode_side(path: Path, floor: int, cap: int) -> int:
    """The shorter side ``path`` is decoded at: its own, kept within ``[floor, cap]``."""
    if cap <= floor:
        return floor
    try:
        with Image.open(path) as image:
            return min(max(min(image.size), floor), cap)
    except (OSError, ValueError):
        return floor  # decode() reports the unreadable file


class _Images:
    """Decoded uint8 images by index, decoding each file at most once per build, at shorter
    side ``shorter_side`` or, up to ``largest_side``, their own."""

    def __init__(self, paths: Sequence[Path], shorter_side: int, largest_side: int = 0) -> None:
        self.paths, self.shorter_side, self.cache = list(paths), shorter_side, {}
        self.largest_side = largest_side

    def get(self, index: int) -> torch.Tensor:
        if index not in self.cache:
            path = self.paths[index]
            try:
                side = decode_side(path, self.shorter_side, self.largest_side)
                self.cache[index] = decode(path, side)
            except ImageError as exc:
                raise StylenormError(f"{path}: cannot be read for the teacher cache ({exc})"
                                     ) from None
        return self.cache[index]


def _crop(spec: CacheSpec, image: torch.Tensor) -> CropConfig:
    """The crop rule: boxes of the pixel sizes a crop of an image at the base shorter side has,
    so a style decoded larger gives crops of its texture at that scale, not shrunk views."""
    base = max(spec.crop_size, BASE_SIDE)
    shrink = (base / min(image.shape[1:])) ** 2
    default = CropConfig(spec.crop_size, resize_to=base)
    if shrink >= 1:
        return default
    return replace(default, scale=(default.scale[0] * shrink, default.scale[1] * shrink))


def _crops(spec: CacheSpec, start: int, stop: int, contents: _Images, styles: _Images):
    pairs = [pair_choice(spec, i) for i in range(start, stop)]
    content = torch.stack([crop_item(image, _crop(spec, image), rng)
                           for image, rng in ((contents.get(c), rng) for c, _, rng in pairs)])
    style = torch.stack([_style_crop(spec, styles.get(s), rng) for _, s, rng in pairs])
    return content, style


def _style_crop(spec: CacheSpec, image: torch.Tensor, rng: np.random.Generator) -> torch.Tensor:
    crop = crop_item(image, _crop(spec, image), rng)
    return jitter_style(crop, rng) if spec.style_jitter else crop


def style_statistics(encoder: VGGEncoder, styles: torch.Tensor) -> dict[str, torch.Tensor]:
    """``mean.<layer>`` and ``std.<layer>`` (N, C_l) float32 of float [0, 1] ``styles``."""
    feats = encoder(styles.to(next(encoder.parameters()).dtype)
                    .contiguous(memory_format=torch.channels_last))
    stats = {}
    for layer in TAPS:
        mean, std = channel_mean_std(feats[layer])
        stats[f"mean.{layer}"] = mean.flatten(1).float().contiguous()
        stats[f"std.{layer}"] = std.flatten(1).float().contiguous()
    return stats


@torch.inference_mode()
def _shard(teacher, encoder: VGGEncoder, content: torch.Tensor, style: torch.Tensor
           ) -> dict[str, torch.Tensor]:
    """The teacher's outputs and the styles' VGG statistics for uint8 crops."""
    styles = style.float() / 255
    output = teacher_output(teacher, content.float() / 255, styles)
    tensors = {"content": content, "style": style,
               "target": output.mul(255).round().to(torch.uint8),
               **style_statistics(encoder, styles)}
    return {k: v.contiguous() for k, v in tensors.items()}


# What caches written before a field meant.
OLD_SPEC_DEFAULTS = {"style_side": BASE_SIDE, "style_jitter": False}


def spec_changes(saved: dict, wanted: dict, keys) -> list[str]:
    """``key: saved -> wanted`` for each of ``keys`` whose values differ."""
    return [f"{k}: {saved.get(k)!r} -> {wanted.get(k)!r}" for k in keys
            if saved.get(k) != wanted.get(k)]


def _check_spec(folder: Path, spec: CacheSpec) -> None:
    """Refuse a cache built with other settings, except a smaller one of the same settings:
    pair ``i`` does not depend on how many pairs there are, so that cache grows (its full
    shards are kept, a part-filled last shard is built again)."""
    path = folder / SPEC
    if path.exists():
        try:
            saved = {**OLD_SPEC_DEFAULTS, **json.loads(path.read_text())}
        except (OSError, ValueError, TypeError) as exc:
            raise StylenormError(f"{path}: unreadable teacher-cache spec ({exc})") from None
        if saved == asdict(spec):
            return
        wanted = asdict(spec)
        only_pairs = [k for k in wanted if saved.get(k) != wanted[k]] == ["pairs"]
        if not only_pairs or saved["pairs"] > spec.pairs:
            what = "; ".join(spec_changes(saved, wanted, wanted))
            hint = " (a cache can grow, not shrink)" if only_pairs else ""
            raise StylenormError(f"{folder}: a teacher cache built with other settings ({what}); "
                                 f"use another --cache folder{hint}")
        if saved["pairs"] % spec.shard_size:  # removed before the spec says it is incomplete
            shard_path(folder, saved["pairs"] // spec.shard_size).unlink(missing_ok=True)
    else:
        folder.mkdir(parents=True, exist_ok=True)
    atomic_write(path, lambda tmp: Path(tmp).write_text(json.dumps(asdict(spec), indent=2)))


def build_teacher_cache(folder: str | Path, spec: CacheSpec, teacher, encoder: VGGEncoder,
                        contents: Sequence[Path], styles: Sequence[Path], *,
                        progress: bool = True) -> TeacherCache:
    """Stylise ``spec.pairs`` crops with ``teacher`` (an AdaIN model, at the device and precision
    it is on) into ``folder`` (shards already there are kept) and return the loaded cache;
    ``encoder`` measures the style statistics."""
    folder = Path(folder)
    if (spec.contents, spec.styles) != (len(contents), len(styles)):
        raise ValueError("spec.contents/styles must be the numbers of content and style paths")
    _check_spec(folder, spec)
    missing = [i for i in range(spec.shard_count()) if not shard_path(folder, i).exists()]
    shorter = max(spec.crop_size, BASE_SIDE)
    images = (_Images(contents, shorter), _Images(styles, shorter, spec.style_side))
    bar = tqdm(total=spec.pairs, initial=spec.pairs - sum(
        min(spec.shard_size, spec.pairs - i * spec.shard_size) for i in missing),
        disable=not on_terminal(progress), desc="teacher cache", unit="pair", dynamic_ncols=True)
    with bar:
        for index in missing:
            start = index * spec.shard_size
            stop = min(start + spec.shard_size, spec.pairs)
            tensors = _shard(teacher, encoder, *_crops(spec, start, stop, *images))
            target = shard_path(folder, index)
            atomic_write(target, lambda tmp, t=tensors: save_file(t, str(tmp)))
            bar.update(stop - start)
    return TeacherCache.load(folder, spec)


class TeacherCache:
    """All pairs of a cache in memory: uint8 images, float32 style statistics."""

    def __init__(self, spec: CacheSpec, tensors: dict[str, torch.Tensor]) -> None:
        self.spec, self.tensors = spec, tensors

    @classmethod
    def load(cls, folder: str | Path, spec: CacheSpec | None = None) -> TeacherCache:
        folder = Path(folder)
        try:
            saved = CacheSpec(**{**OLD_SPEC_DEFAULTS, **json.loads((folder / SPEC).read_text())})
        except (OSError, ValueError, TypeError) as exc:
            raise StylenormError(f"{folder}: not a teacher cache ({exc})") from None
        if spec is not None and saved != spec:
            raise StylenormError(f"{folder}: its spec differs from the one asked for")
        tensors: dict[str, torch.Tensor] = {}
        filled = 0
        for index in range(saved.shard_count()):  # into tensors of the full size: no copies
            path = shard_path(folder, index)
            try:
                part = load_file(path)
            except (OSError, ValueError, RuntimeError, SafetensorError) as exc:
                raise StylenormError(f"{path}: missing or damaged teacher-cache shard ({exc}); "
                                     "delete it and build again") from None
            count = part["content"].shape[0]
            if filled + count <= saved.pairs:
                if not tensors:
                    tensors = {k: v.new_empty((saved.pairs, *v.shape[1:]))
                               for k, v in part.items()}
                for key, value in part.items():
                    tensors[key][filled : filled + count] = value
            filled += count
        if filled != saved.pairs:
            raise StylenormError(f"{folder}: holds {filled} pairs, its spec says {saved.pairs}")
        return cls(saved, tensors)

    def __len__(self) -> int:
        return self.spec.pairs

    def batch(self, indices: torch.Tensor, flips: torch.Tensor) -> list[torch.Tensor]:
        """[content, style, target] float in [0, 1] and the style statistics of ``indices``;
        content and target are mirrored together where ``flips`` is true."""
        images = [self.tensors[k][indices].float().div(255) for k in ("content", "style",
                                                                        "target")]
        for i in (0, 2):
            images[i] = torch.where(flips.view(-1, 1, 1, 1), images[i].flip(-1), images[i])
        return images + flat_stats({k: v[indices] for k, v in self.tensors.items()
                                    if k.startswith(("mean.", "std."))})


def flat_stats(stats: dict[str, torch.Tensor]) -> list[torch.Tensor]:
    """``mean.<layer>``/``std.<layer>`` (N, C) as the flat [mean, std, mean, std, ...] list of
    (N, C, 1, 1) tensors that batches carry (:func:`stats_dicts` reads it back)."""
    return [stats[f"{kind}.{layer}"][..., None, None] for layer in TAPS
            for kind in ("mean", "std")]


def stats_dicts(stats: Sequence[torch.Tensor]) -> tuple[dict, dict]:
    """The flat [mean, std, mean, std, ...] list of :meth:`TeacherCache.batch` (each
    (N, C, 1, 1)) as two dicts by layer."""
    means = {layer: stats[2 * i] for i, layer in enumerate(TAPS)}
    stds = {layer: stats[2 * i + 1] for i, layer in enumerate(TAPS)}
    return means, stds
