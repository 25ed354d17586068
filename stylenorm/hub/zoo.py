"""The model zoo: builds models from weights files and imports public ``.pth`` checkpoints.

Kinds of weights file:

* ``vgg-encoder``: a VGG-19 encoder (config: :class:`EncoderConfig`), installed once under the
  standard name of its family and shared by every AdaIN decoder.
* ``adain``: an AdaIN decoder (config: ``{"decoder": DecoderConfig, "encoder": EncoderConfig}``);
  loading it also loads the matching encoder from the store.
* ``lite``: the small VGG-free arbitrary-style model (config: :class:`LiteConfig`); needs no
  encoder.
* ``cin``: a multi-style CIN transformer network (config: :class:`CINConfig`, with the style
  names); needs no encoder and no style images.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable
from pathlib import Path

import torch
from torch import nn

from ..choices import DEFAULT_MODEL
from ..errors import WeightsError
from ..models.adain import AdaINModel
from ..models.cin import CINConfig, CINTransformer
from ..models.decoder import AdaINDecoder, DecoderConfig, adain_decoder_key_map
from ..models.lite import LiteConfig, LiteModel
from ..models.vgg import EncoderConfig, EncoderFamily, VGGEncoder, sequential_key_map
from .records import install_command
from .weights import (
    WeightsMeta,
    installed_weights,
    load_pth,
    load_state_strict,
    load_weights,
    rename_state,
    resolve_weights,
    save_weights,
    store_path,
    weights_home,
)

ENCODER_NAMES = {
    EncoderFamily.NORMALISED: "vgg19-normalised",
    EncoderFamily.TORCHVISION: "vgg19-torchvision",
}


def encoder_name(family: str | EncoderFamily) -> str:
    return ENCODER_NAMES[EncoderFamily(family)]


def load_encoder(family: str | EncoderFamily = EncoderFamily.NORMALISED) -> VGGEncoder:
    """The installed encoder of ``family``, with the command that installs it if absent."""
    name = encoder_name(family)
    try:
        path = resolve_weights(name)
    except WeightsError:
        raise WeightsError(
            f"the {EncoderFamily(family).value} VGG-19 encoder ({name}) that this model needs "
            f"is not installed in {weights_home()}; install it with `{install_command(name)}`"
        ) from None
    return encoder_from_file(path)


def required_weights(meta: WeightsMeta) -> list[str]:
    """The store names of the weights a model of ``meta`` cannot run without (an AdaIN
    decoder's VGG encoder; the lite and CIN models need none)."""
    if meta.kind != "adain":
        return []
    encoder = meta.config.get("encoder")
    family = encoder.get("family") if isinstance(encoder, dict) else None
    try:
        return [encoder_name(family or EncoderFamily.NORMALISED)]
    except ValueError:  # an unknown family: loading the model says so
        return []


def missing_weights(meta: WeightsMeta, installed: set[str] | None = None) -> list[str]:
    """:func:`required_weights` that are not ``installed`` (default: on the search path)."""
    if installed is None:
        installed = {path.stem for path, _ in installed_weights()}
    return [name for name in required_weights(meta) if name not in installed]


def encoder_from_file(path: Path, what: str = "") -> VGGEncoder:
    """The VGG encoder stored in ``path``; ``what`` prefixes errors (e.g. ``--encoder``)."""
    tensors, meta = load_weights(path)
    if meta.kind != "vgg-encoder":
        raise WeightsError(f"{what}{path}: holds a {meta.kind!r} model, not a vgg-encoder")
    encoder = VGGEncoder(EncoderConfig(**meta.config))
    load_state_strict(encoder, tensors, path)
    return encoder


def load_frozen_encoder(name_or_path: str) -> tuple[VGGEncoder, dict]:
    """A VGG encoder from an installed name or a file, and where it came from (for provenance)."""
    try:
        path = resolve_weights(name_or_path)
    except WeightsError as exc:
        hint = "" if install_command(str(name_or_path)) else (
            "; give an installed encoder's name or a .safetensors path (`stylenorm weights "
            "import --encoder FILE.pth` installs a .pth)")
        raise WeightsError(f"--encoder: {exc}{hint}") from None
    encoder = encoder_from_file(path, "--encoder ")
    return encoder, {"encoder": path.name, "encoder_sha256": file_sha256(path)}


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def build_adain(config: dict) -> AdaINModel:
    decoder = AdaINDecoder(DecoderConfig(**config.get("decoder", {})))
    encoder_family = config.get("encoder", {}).get("family", EncoderFamily.NORMALISED.value)
    return AdaINModel(load_encoder(encoder_family), decoder)


def load_model(name_or_path: str | os.PathLike = DEFAULT_MODEL) -> nn.Module:
    """A ready model (eval mode, fp32) from an installed name or a file path."""
    path = resolve_weights(name_or_path)
    tensors, meta = load_weights(path)
    loader = MODEL_LOADERS.get(meta.kind)
    if loader is None:
        raise WeightsError(
            f"{path}: holds a {meta.kind!r} model; stylize takes {sorted(MODEL_LOADERS)}"
        )
    try:
        model = loader(meta.config, tensors, path)
    except (TypeError, KeyError, ValueError, AttributeError) as exc:
        if isinstance(exc, WeightsError):
            raise
        raise WeightsError(
            f"{path}: its config does not describe a {meta.kind!r} model ({exc})") from None
    model.weights_meta = meta
    return model.eval()


MAX_STYLE_SIZE = 4096  # a lite model's style side from its metadata: larger is not a real model


def check_config_size(model_on_meta: Callable[[], nn.Module], tensors: dict[str, torch.Tensor],
                      path: Path) -> None:
    """Refuse a config that asks for far more parameters than the file holds, before any of
    them is allocated: the model is built on the meta device (shapes only, no memory)."""
    with torch.device("meta"):
        probe = model_on_meta()
    wanted = sum(t.numel() for t in probe.state_dict().values())
    held = sum(t.numel() for t in tensors.values())
    if wanted > 2 * held + 1_000_000:
        raise WeightsError(f"{path}: its config describes a model of {wanted} parameters but "
                           f"the file holds {held}; the file is corrupt or forged")


def load_adain(config: dict, tensors: dict[str, torch.Tensor], path: Path) -> AdaINModel:
    model = build_adain(config)
    load_state_strict(model.decoder, tensors, path)
    return model


def load_lite(config: dict, tensors: dict[str, torch.Tensor], path: Path) -> LiteModel:
    lite = LiteConfig.from_dict(config)
    if not 16 <= lite.style_size <= MAX_STYLE_SIZE:
        raise WeightsError(f"{path}: its config's style_size {lite.style_size} is outside "
                           f"16..{MAX_STYLE_SIZE}; the file is corrupt or forged")
    try:
        check_config_size(lambda: LiteModel(lite), tensors, path)
    except ValueError as exc:  # a config no lite model has
        raise WeightsError(f"{path}: {exc}; the file is corrupt or forged") from None
    model = LiteModel(lite)
    load_state_strict(model, tensors, path)
    return model


def load_cin(config: dict, tensors: dict[str, torch.Tensor], path: Path) -> CINTransformer:
    cin = CINConfig(**config)
    check_config_size(lambda: CINTransformer(cin), tensors, path)
    model = CINTransformer(cin)
    load_state_strict(model, tensors, path)
    return model


# kind -> loader(config, tensors, path); each kind's module adds its entry here.
MODEL_LOADERS = {"adain": load_adain, "lite": load_lite, "cin": load_cin}


# --------------------------------------------------------------------------- importers


def import_encoder(
    pth: str | os.PathLike, family: str = "normalised", home: Path | None = None
) -> Path:
    """Convert a public VGG-19 ``.pth`` (normalised AdaIN layout, full or truncated after
    relu4_1, or torchvision's ``vgg19-*.pth``) into the store."""
    pth = Path(pth)
    family_enum = EncoderFamily(family)
    config = EncoderConfig(family=family_enum.value)
    encoder = VGGEncoder(config)
    state = load_pth(pth)
    if family_enum is EncoderFamily.NORMALISED:
        def later_layer(key: str) -> bool:  # layers past relu4_1 in the full file
            head = key.split(".")[0]
            return head.isdigit() and int(head) > 29
    else:
        def later_layer(key: str) -> bool:
            head = key.split(".")
            return head[0] == "classifier" or (head[0] == "features" and int(head[1]) > 19)
    tensors = rename_state(state, sequential_key_map(family_enum), encoder.state_dict(), pth,
                           ignore_extra=later_layer)
    path = (home or weights_home()) / f"{encoder_name(family_enum)}.safetensors"
    provenance = {"imported_from": pth.name, "layout": f"public {family_enum.value} VGG-19"}
    return save_weights(path, tensors, "vgg-encoder", config.to_dict(), provenance)


def import_decoder(
    pth: str | os.PathLike, name: str, family: str = "normalised", home: Path | None = None,
    shadow_shipped: bool = False,
) -> Path:
    """Convert a public PyTorch-AdaIN ``decoder.pth`` into the store as model ``name`` (a plain
    name; one of a shipped model only with ``shadow_shipped``)."""
    path = store_path(name, home, shadow_shipped)
    pth = Path(pth)
    decoder = AdaINDecoder(DecoderConfig())
    tensors = rename_state(load_pth(pth), adain_decoder_key_map(), decoder.state_dict(), pth)
    config = {"decoder": DecoderConfig().to_dict(), "encoder": {"family": family}}
    provenance = {"imported_from": pth.name, "layout": "public PyTorch AdaIN decoder"}
    return save_weights(path, tensors, "adain", config, provenance)
