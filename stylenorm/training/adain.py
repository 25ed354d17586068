"""Train an AdaIN decoder (Huang & Belongie 2017) on folders of content and style images.

With f the frozen VGG encoder and g the decoder being trained, for content c and style s::

    t = AdaIN(f(c), f(s))                              target features (relu4_1)
    L = content_weight * ||f(g(t)) - t||^2             content loss at relu4_1
      + style_weight * sum_l ||mu(f_l(g(t))) - mu(f_l(s))||^2 + ||sigma(..) - sigma(..)||^2

with l over relu1_1 .. relu4_1 (or the Gram-matrix loss with ``style_loss="gram"``). The decoder's
norm layer is chosen by name (``--norm``); for ``switchable`` the learned IN/LN/BN mixture of each
layer is reported at the end, saved in the model's metadata and drawn in the run folder.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from ..errors import StylenormError
from ..hub.files import save_weights
from ..models.adain import AdaINModel
from ..models.decoder import AdaINDecoder, DecoderConfig
from ..models.vgg import VGGEncoder
from ..nn.norms import NormName, SwitchableNorm2d
from ..ranks import from_environment
from .config import TrainConfig, as_enum, choose, plain
from .inputs import crop_data, find_inputs, sample_pairs, validation_pairs
from .loop import TrainResult, fit, load_frozen_encoder
from .objective import AdaINObjective, FrozenEncoder, StyleLoss
from .plots import mixture_chart, mixture_table
from .warm_start import start_from

__all__ = ["AdaINTask", "AdaINTrainConfig", "StyleLoss", "switchable_weights", "train_adain"]


@dataclass
class AdaINTrainConfig(TrainConfig):
    """`TrainConfig` plus the data, the decoder's norm and the loss weights."""

    content: str = ""
    style: str = ""
    encoder: str = "vgg19-normalised"
    norm: NormName = NormName.NONE
    style_loss: StyleLoss = StyleLoss.MEAN_STD
    content_weight: float = 1.0
    style_weight: float = 10.0
    mix_lr_scale: float = 1.0  # switchable norms' mixture weights learn at lr * this
    sample_count: int = 4

    def __post_init__(self) -> None:
        super().__post_init__()
        self.norm = as_enum(self.norm, NormName)
        self.style_loss = as_enum(self.style_loss, StyleLoss)

    def validate(self) -> None:
        super().validate()
        NormName(self.norm)  # ValueError naming the choices
        choose("style_loss", self.style_loss, StyleLoss)
        ranks = from_environment().count  # under torchrun the statistics span every rank
        if (self.norm in (NormName.BATCH.value, NormName.SWITCHABLE.value)
                and self.batch_size * ranks < 2):
            raise StylenormError(f"norm {plain(self.norm)} needs batch_size >= 2 for batch "
                                 "statistics; got 1", params=("norm", "batch_size"))


def switchable_weights(network: nn.Module) -> dict[str, dict[str, dict[str, float]]]:
    """Each SwitchableNorm2d's softmaxed IN/LN/BN weights, keyed by its block's name."""
    return {
        name.removeprefix("blocks.").removesuffix(".norm"): module.mixture_weights()
        for name, module in network.named_modules() if isinstance(module, SwitchableNorm2d)
    }


class AdaINTask:
    """The decoder being trained, the frozen encoder, the losses and the sample pictures."""

    def __init__(self, config: AdaINTrainConfig, encoder: VGGEncoder, decoder: AdaINDecoder,
                 samples: tuple[torch.Tensor, torch.Tensor],
                 validation: tuple[torch.Tensor, torch.Tensor] | None = None) -> None:
        self.config, self.network = config, decoder
        self.samples, self.validation = samples, validation
        self.encode = FrozenEncoder(encoder)
        self.objective = AdaINObjective(self.encode, config.content_weight, config.style_weight,
                                        gram=config.style_loss == StyleLoss.GRAM.value)
        self.forward_decoder = torch.compile(decoder) if config.compile else decoder

    @property
    def encoder(self) -> VGGEncoder:
        return self.encode.module

    def prepare(self, device: torch.device, dtype: torch.dtype, channels_last: bool) -> None:
        """Move to ``device``; the frozen encoder is cast to ``dtype`` once, while the decoder
        trains under autocast with float32 weights."""
        fmt = torch.channels_last if channels_last else torch.contiguous_format
        self.network.to(device, memory_format=fmt)
        self.encode.prepare(device, dtype, fmt)

    def trainable(self) -> list[dict]:
        """Parameter groups: a switchable norm's six mixture weights in their own group, which
        learns at ``mix_lr_scale`` times the learning rate."""
        mixture = [p for name, p in self.network.named_parameters()
                   if name.endswith(("mean_weight", "var_weight"))]
        chosen = {id(p) for p in mixture}
        rest = [p for p in self.network.parameters() if id(p) not in chosen]
        groups = [{"params": rest}]
        if mixture:
            groups.append({"params": mixture, "lr_scale": self.config.mix_lr_scale})
        return groups

    def _stylise(self, content: torch.Tensor, style: torch.Tensor):
        target, style_feats = self.objective.targets(content, style)
        return self.forward_decoder(target), target, style_feats

    def _losses(self, content: torch.Tensor, style: torch.Tensor) -> dict[str, torch.Tensor]:
        return self.objective.losses(*self._stylise(content, style))

    def losses(self, batch: list[torch.Tensor], iteration: int) -> dict[str, torch.Tensor]:
        return self._losses(*batch)

    def validation_losses(self) -> dict[str, torch.Tensor] | None:
        """The losses of the held-out pairs (content i with style i), without augmentation."""
        return None if self.validation is None else self._losses(*self.validation)

    def sample_rows(self) -> list[list[torch.Tensor]]:
        contents, styles = self.samples
        output = self._stylise(contents, styles)[0].float().clamp(0, 1)
        return [[contents[i], styles[i], output[i]] for i in range(contents.shape[0])]

    def file_config(self) -> dict:
        """The config of the model file this task writes."""
        return {"decoder": self.network.config.to_dict(),
                "encoder": self.encoder.config.to_dict()}

    def export(self, path: Path, provenance: dict) -> Path:
        return save_weights(path, self.network.state_dict(), AdaINModel.kind, self.file_config(),
                            provenance)

    def report(self, run_dir: Path) -> tuple[str, dict]:
        weights = switchable_weights(self.network)
        if not weights:
            return "", {}
        chart = mixture_chart(weights, run_dir / "switchable_weights.png")
        table = mixture_table(weights)
        return f"learned switchable-norm mixtures (also in {chart}):\n{table}", {
            "switchable_weights": weights}


def build_adain_task(config: AdaINTrainConfig, encoder: nn.Module, device: torch.device,
                     contents: list[Path], styles: list[Path]) -> AdaINTask:
    """The decoder (initialised from torch's global RNG) and sample images on ``device``."""
    decoder = AdaINDecoder(DecoderConfig(norm=plain(config.norm)))
    samples = sample_pairs(contents, styles, config.crop_size, config.sample_count, device)
    return AdaINTask(config, encoder, decoder, samples, validation_pairs(config, device))


def train_adain(config: AdaINTrainConfig, *, resume: bool = False, progress: bool = True,
                init: str | None = None) -> TrainResult:
    """Train (or, with ``resume``, continue training) an AdaIN decoder; see the module doc.
    ``init`` starts from the weights of an existing AdaIN decoder file with the same norm."""
    device, contents, styles = find_inputs(config)
    encoder, encoder_meta = load_frozen_encoder(config.encoder)
    torch.manual_seed(config.seed)
    task = build_adain_task(config, encoder, device, contents, styles)
    if init is not None and not resume:
        start_from(task.network, init, AdaINModel.kind, config=task.file_config())
    data = crop_data(config, device, [contents, styles])
    provenance = {"trained_with": "stylenorm train adain", **encoder_meta,
                  "content_images": len(contents), "style_images": len(styles),
                  "cpu_threads": torch.get_num_threads(),
                  "init": Path(init).name if init else None}
    return fit(task, config, data, resume=resume, progress=progress, provenance=provenance)
