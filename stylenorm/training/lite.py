"""Train the lite model (:mod:`..models.lite`) with the normalised VGG-19 as a fixed loss network.

With f the frozen VGG encoder, m the lite model, content c and style s (both augmented)::

    o = m(c, code(s))
    L = content_weight * ||f(o)_relu4_1 - AdaIN(f(c), f(s))||^2
      + style_weight * sum_l ||mu(f_l(o)) - mu(f_l(s))||^2 + ||sigma(..) - sigma(..)||^2
      + identity_weight * ||m(c, code(c)) - c||^2          (so that alpha = 0 returns c)

Our style images are few, so styles are augmented (flips, quarter turns, colour-channel
permutations) to make the style path generalise to styles it never saw. Augmentations are drawn
from a generator seeded by (seed, iteration), so ``--resume`` replays them exactly.

With ``distill`` (:class:`~.distill.DistillSettings`) the same task learns from an AdaIN
teacher instead: a :class:`~.distill.Distillation` gives the loss terms and the teacher
(:mod:`.lite_teacher`) the batches; the identity term stays.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F

from ..errors import StylenormError
from ..hub.files import save_weights
from ..models.lite import LiteConfig, LiteModel, grown_state
from ..models.vgg import VGGEncoder
from .config import TrainConfig, as_enum
from .distill import Distillation, DistillSettings
from .distributed import refuse_in_job
from .inputs import crop_data, find_inputs, sample_pairs, validation_pairs
from .lite_teacher import LiteTeacher
from .loop import TrainResult, fit, load_frozen_encoder
from .objective import AdaINObjective, FrozenEncoder, StyleLoss
from .run_state import CHECKPOINT
from .runlog import check_run_dir
from .warm_start import start_from

__all__ = ["LiteTask", "LiteTrainConfig", "augment_styles", "train_lite"]

TRAINING_ONLY = "code_probe."  # submodules a task adds to the network and export leaves out
PERMUTATIONS = ((0, 1, 2), (0, 2, 1), (1, 0, 2), (1, 2, 0), (2, 0, 1), (2, 1, 0))


@dataclass
class LiteTrainConfig(TrainConfig):
    content: str = ""
    style: str = ""
    encoder: str = "vgg19-normalised"
    widths: tuple[int, int, int] = (16, 32, 64)
    res_blocks: int = 2
    style_mlp: int = 0  # LiteConfig.style_mlp
    style_deep: int = 0  # LiteConfig.style_deep
    half_blocks: int = 0  # LiteConfig.half_blocks
    content_weight: float = 1.0
    style_weight: float = 10.0
    identity_weight: float = 5.0
    augment: bool = True
    style_loss: StyleLoss = StyleLoss.MEAN_STD
    sample_count: int = 4
    lr: float = 5e-4
    lr_decay: float = 1e-4
    distill: DistillSettings | None = None  # learn from a teacher (train lite --teacher)

    RESUMABLE = (*TrainConfig.RESUMABLE, "distill.val_texture")

    def __post_init__(self) -> None:
        super().__post_init__()
        self.style_loss = as_enum(self.style_loss, StyleLoss)
        if isinstance(self.distill, dict):  # from JSON
            known = DistillSettings.names()
            self.distill = DistillSettings(**{k: v for k, v in self.distill.items()
                                              if k in known})

    @classmethod
    def upgraded(cls, values: dict) -> dict:
        """Runs distilled before distillation was a part of this config (``DistillConfig``, a
        subclass) saved its settings beside the others: they move into ``distill``."""
        values = dict(values)
        flat = {k: values.pop(k) for k in DistillSettings.names() if k in values}
        if flat and values.get("distill") is None:
            values["distill"] = flat
        return values

    def validate(self) -> None:
        super().validate()
        if self.style_deep and not self.style_mlp:
            raise StylenormError("--style-deep needs --style-mlp: the StyleFilm is what reads "
                                 "the deep level's statistics", params=("style_deep",))
        if self.distill is not None:
            self.distill.validate(self.batch_size)

    def lite_config(self) -> LiteConfig:
        return LiteConfig(widths=tuple(self.widths), res_blocks=self.res_blocks,
                          style_size=self.crop_size, style_mlp=self.style_mlp,
                          style_deep=self.style_deep, half_blocks=self.half_blocks)


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


class LiteTask:
    """The AdaIN objective (:class:`~.objective.AdaINObjective`) with the lite model as the
    stylising network, an identity loss and style augmentation; or, with a ``distillation``,
    its loss terms on the teacher's batches in place of the objective and augmentation."""

    # The identity loss takes the first half of each rank's batch and the augmentations are
    # drawn per rank: a step depends on how the global batch is split among torchrun ranks.
    exact_across_world_sizes = False

    def __init__(self, config: LiteTrainConfig, encoder: VGGEncoder, model: LiteModel,
                 samples: tuple[torch.Tensor, torch.Tensor],
                 validation: tuple[torch.Tensor, torch.Tensor] | None = None,
                 distillation: Distillation | None = None) -> None:
        self.config, self.network = config, model
        self.samples, self.validation = samples, validation
        self.encode = FrozenEncoder(encoder)
        self.objective = AdaINObjective(self.encode, config.content_weight, config.style_weight,
                                        gram=config.style_loss == StyleLoss.GRAM.value)
        self.distillation = distillation
        if distillation is not None:
            distillation.attach(model, self.encode)

    @property
    def encoder(self) -> VGGEncoder:
        return self.encode.module

    def prepare(self, device: torch.device, dtype: torch.dtype, channels_last: bool) -> None:
        fmt = torch.channels_last if channels_last else torch.contiguous_format
        self.network.to(device, memory_format=fmt)
        self.encode.prepare(device, dtype, fmt)

    def trainable(self) -> list[dict]:
        return [{"params": list(self.network.parameters())}]

    def _stylise(self, content: torch.Tensor, style: torch.Tensor):
        target, style_feats = self.objective.targets(content, style)
        output = self.network(content, self.network.style_code(style))
        return output, target, style_feats

    def _losses(self, content: torch.Tensor, style: torch.Tensor) -> dict[str, torch.Tensor]:
        return self.objective.losses(*self._stylise(content, style))

    def validation_losses(self) -> dict[str, torch.Tensor] | None:
        """The losses of the held-out pairs (content i with style i), without augmentation;
        with a distillation, also its figures against the teacher."""
        if self.validation is None:
            return None
        measured = self._losses(*self.validation)
        if self.distillation is None:
            return measured
        return self.distillation.validation_losses(self.validation, measured)

    def sample_rows(self) -> list[list[torch.Tensor]]:
        """Content, style, (the teacher's output,) the student's output."""
        contents, styles = self.samples
        output = self._stylise(contents, styles)[0].float().clamp(0, 1)
        columns = [contents, styles, output]
        if self.distillation is not None:
            columns.insert(2, self.distillation.teacher_outputs["samples"])
        return [[column[i] for column in columns] for i in range(contents.shape[0])]

    def losses(self, batch: list[torch.Tensor], iteration: int) -> dict[str, torch.Tensor]:
        content = batch[0]
        if self.distillation is not None:
            losses, total = self.distillation.losses(batch)
        else:
            style = batch[1]
            if self.config.augment:
                generator = torch.Generator().manual_seed(self.config.seed * 1_000_003
                                                          + iteration)
                style = augment_styles(style, generator)
            losses = self._losses(content, style)
            total = losses["total"]
        losses["identity"] = self.identity_loss(content)
        losses["total"] = total + self.config.identity_weight * losses["identity"]
        return losses

    def identity_loss(self, content: torch.Tensor) -> torch.Tensor:
        """||m(c, code(c)) - c||^2 on the first half of the batch: what makes ``alpha`` = 0
        need little detail added back."""
        own = content[: max(1, content.shape[0] // 2)]
        return F.mse_loss(self.network(own, self.network.style_code(own)).float(), own.float())

    def export(self, path: Path, provenance: dict) -> Path:
        """The model without its training-only parts (distillation's code probe)."""
        state = {k: v for k, v in self.network.state_dict().items()
                 if not k.startswith(TRAINING_ONLY)}
        return save_weights(path, state, LiteModel.kind, self.network.config.to_dict(),
                            provenance)

    def report(self, run_dir: Path) -> tuple[str, dict]:
        params = sum(p.numel() for name, p in self.network.named_parameters()
                     if not name.startswith(TRAINING_ONLY))
        return f"lite model: {params} parameters", {"num_params": params}


def build_lite_task(config: LiteTrainConfig, device: torch.device, contents, styles,
                    encoder: VGGEncoder) -> LiteTask:
    """The lite model (initialised from torch's global RNG, drawn from after the loss network
    ``encoder`` was loaded) and sample images on ``device``."""
    model = LiteModel(config.lite_config())
    fmt = torch.channels_last if config.channels_last else torch.contiguous_format
    encoder.to(device, memory_format=fmt)
    model.to(device, memory_format=fmt)
    samples = sample_pairs(contents, styles, config.crop_size, config.sample_count, device)
    return LiteTask(config, encoder, model, samples, validation_pairs(config, device))


def train_lite(config: LiteTrainConfig, *, resume: bool = False, progress: bool = True,
               init: str | None = None) -> TrainResult:
    """Train (or continue) the lite model, from its teacher with ``config.distill``; ``init``
    starts from an existing lite model file."""
    if config.distill is not None:
        return distil(config, resume=resume, progress=progress, init=init)
    device, contents, styles = find_inputs(config)
    torch.manual_seed(config.seed)
    encoder, encoder_meta = load_frozen_encoder(config.encoder)  # its build draws from the RNG
    task = build_lite_task(config, device, contents, styles, encoder)
    if init is not None and not resume:
        start_from(task.network, init, LiteModel.kind, config=task.network.config.to_dict(),
                   complete=grown_state)
    data = crop_data(config, device, [contents, styles])
    provenance = {"trained_with": "stylenorm train lite", **encoder_meta,
                  "content_images": len(contents), "style_images": len(styles),
                  "init": Path(init).name if init else None}
    return fit(task, config, data, resume=resume, progress=progress, provenance=provenance)


def distil(config: LiteTrainConfig, *, resume: bool = False, progress: bool = True,
           init: str | None = None) -> TrainResult:
    """:func:`train_lite` with ``config.distill``: build (or reuse) the teacher cache, then
    train the lite student on it (or on the teacher's outputs of every batch)."""
    refuse_in_job("stylenorm train lite --teacher", "every rank would build the teacher cache")
    check_run_dir(config.out, resume, CHECKPOINT)  # before the cache, which can take hours
    device, contents, styles = find_inputs(config)
    encoder, encoder_meta = load_frozen_encoder(config.encoder)
    teacher = LiteTeacher(config, device, encoder, encoder_meta, contents, styles,
                          progress=progress)
    encoder.float()
    samples = sample_pairs(contents, styles, config.crop_size, config.sample_count, device)
    validation = validation_pairs(config, device)
    distillation = teacher.distillation(config, samples, validation, encoder)
    torch.manual_seed(config.seed)  # the student's initial weights, then the code probe's
    task = LiteTask(config, encoder, LiteModel(config.lite_config()), samples, validation,
                    distillation)
    if init is not None and not resume:
        start_from(task.network, init, LiteModel.kind, config=task.network.config.to_dict(),
                   complete=grown_state)
    data = teacher.data(config, contents, styles)
    provenance = {"trained_with": "stylenorm train lite --teacher", **encoder_meta,
                  **teacher.provenance(config), "content_images": len(contents),
                  "style_images": len(styles), "init": Path(init).name if init else None}
    return fit(task, config, data, resume=resume, progress=progress, provenance=provenance)
