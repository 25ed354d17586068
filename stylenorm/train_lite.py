"""Train the lite model (:mod:`stylenorm.lite`) with the normalised VGG-19 as a fixed loss network.

With f the frozen VGG encoder, m the lite model, content c and style s (both augmented)::

    o = m(c, code(s))
    L = content_weight * ||f(o)_relu4_1 - AdaIN(f(c), f(s))||^2
      + style_weight * sum_l ||mu(f_l(o)) - mu(f_l(s))||^2 + ||sigma(..) - sigma(..)||^2
      + identity_weight * ||m(c, code(c)) - c||^2          (so that alpha = 0 returns c)

Our style images are few, so styles are augmented (flips, quarter turns, colour-channel
permutations) to make the style path generalise to styles it never saw. Augmentations are drawn
from a generator seeded by (seed, iteration), so ``--resume`` replays them exactly.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F

from .conditional import adain
from .data import CropConfig, find_images, make_data, validation_images
from .lite import LiteConfig, LiteModel, grown_state
from .train import TrainConfig, TrainResult, fit, load_frozen_encoder
from .train_adain import AdaINTask, StyleLoss, paired, validation_pairs
from .weights import save_weights

__all__ = ["LiteTask", "LiteTrainConfig", "augment_styles", "train_lite"]

PERMUTATIONS = ((0, 1, 2), (0, 2, 1), (1, 0, 2), (1, 2, 0), (2, 0, 1), (2, 1, 0))


@dataclass
class LiteTrainConfig(TrainConfig):
    content: str = ""
    style: str = ""
    encoder: str = "vgg19-normalised"
    widths: tuple[int, int, int] = (16, 32, 64)
    res_blocks: int = 2
    content_weight: float = 1.0
    style_weight: float = 10.0
    identity_weight: float = 5.0
    augment: bool = True
    style_loss: str = StyleLoss.MEAN_STD.value
    sample_count: int = 4
    lr: float = 5e-4
    lr_decay: float = 1e-4

    def lite_config(self) -> LiteConfig:
        return LiteConfig(widths=tuple(self.widths), res_blocks=self.res_blocks,
                          style_size=self.crop_size)


def augment_styles(styles: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """Per image: a random flip, quarter turn and colour-channel permutation. Returns a new
    tensor. Shape: (N, 3, S, S) -> (N, 3, S, S)."""
    out = []
    for image in styles:
        draws = torch.randint(0, 12, (3,), generator=generator).tolist()
        if draws[0] % 2:
            image = image.flip(-1)
        image = torch.rot90(image, draws[1] % 4, dims=(-2, -1))
        out.append(image[list(PERMUTATIONS[draws[2] % len(PERMUTATIONS)])])
    return torch.stack(out).contiguous(memory_format=torch.channels_last)


class LiteTask(AdaINTask):
    """The AdaIN task's losses and samples with the lite model as the stylising network."""

    def _stylise(self, content: torch.Tensor, style: torch.Tensor):
        with torch.no_grad():
            content_feat = self.encode(content)["relu4_1"]
            style_feats = self.encode(style)
            target = adain(content_feat.float(), style_feats["relu4_1"].float())
        output = self.network(content, self.network.style_code(style))
        return output, target, style_feats

    def losses(self, batch: list[torch.Tensor], iteration: int) -> dict[str, torch.Tensor]:
        content, style = batch
        if self.config.augment:
            generator = torch.Generator().manual_seed(self.config.seed * 1_000_003 + iteration)
            style = augment_styles(style, generator)
        losses = self._losses(content, style)
        half = max(1, content.shape[0] // 2)
        own = content[:half]
        rebuilt = self.network(own, self.network.style_code(own))
        loss_id = F.mse_loss(rebuilt.float(), own.float())
        losses["identity"] = loss_id
        losses["total"] = losses["total"] + self.config.identity_weight * loss_id
        return losses

    def export(self, path: Path, provenance: dict) -> Path:
        return save_weights(path, self.network.state_dict(), "lite",
                            self.network.config.to_dict(), provenance)

    def report(self, run_dir: Path) -> tuple[str, dict]:
        params = sum(p.numel() for p in self.network.parameters())
        return f"lite model: {params} parameters", {"num_params": params}


def start_lite_from(network: LiteModel, path: str) -> None:
    """``--init``: the weights of a lite model file of the same widths; a model with fewer
    residual blocks grows to ``network``'s depth, its new blocks starting as the identity."""
    from .errors import StylenormError
    from .weights import load_state_strict, load_weights

    state, meta = load_weights(path)
    if meta.kind != "lite":
        raise StylenormError(f"--init {path}: a {meta.kind!r} model, not 'lite'")
    load_state_strict(network, grown_state(network, state), f"--init {path}")


def build_lite_task(config: LiteTrainConfig, device: torch.device, contents, styles) -> LiteTask:
    encoder, _ = load_frozen_encoder(config.encoder)
    model = LiteModel(config.lite_config())
    fmt = torch.channels_last if config.channels_last else torch.contiguous_format
    encoder.to(device, memory_format=fmt)
    model.to(device, memory_format=fmt)
    count = config.sample_count
    samples = (validation_images(contents, config.crop_size, count, device),
               validation_images(styles, config.crop_size, count, device))
    return LiteTask(config, encoder, model, paired(*samples), validation_pairs(config, device))


def train_lite(config: LiteTrainConfig, *, resume: bool = False, progress: bool = True,
               init: str | None = None) -> TrainResult:
    """Train (or continue) the lite model; ``init`` starts from an existing lite model file."""
    from .runtime import resolve_device

    config.validate()
    device = resolve_device(config.device)
    contents = find_images(config.content, "content")
    styles = find_images(config.style, "style")
    torch.manual_seed(config.seed)
    task = build_lite_task(config, device, contents, styles)
    if init is not None and not resume:
        start_lite_from(task.network, init)
    _, encoder_meta = load_frozen_encoder(config.encoder)
    data = make_data([contents, styles], CropConfig(config.crop_size), config.batch_size,
                     config.seed, device, config.data_mode, config.num_workers)
    provenance = {"trained_with": "stylenorm train lite", **encoder_meta,
                  "content_images": len(contents), "style_images": len(styles),
                  "init": Path(init).name if init else None}
    return fit(task, config, data, resume=resume, progress=progress, provenance=provenance)
