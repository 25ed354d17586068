"""The model zoo: the one place that knows the kinds of weights file, what each needs and how
each is loaded.

Kinds (each a :class:`ModelKind` in :data:`KINDS`, but the encoder):

* ``vgg-encoder``: a VGG-19 encoder (config: :class:`EncoderConfig`), installed once under the
  standard name of its family and shared by every AdaIN decoder; not a model by itself.
* ``adain``: an AdaIN decoder (config: ``{"decoder": DecoderConfig, "encoder": EncoderConfig}``);
  loading it also loads the matching encoder from the store; takes styles from images.
* ``lite``: the small VGG-free arbitrary-style model (config: :class:`LiteConfig`); needs no
  other weights; takes styles from images.
* ``cin``: a multi-style CIN transformer network (config: :class:`CINConfig`, with the style
  names); needs no encoder and no style images.

The web page, ``bench``, ``export`` and ``weights list`` ask this module
(:func:`takes_style_images`, :func:`missing_weights`, :func:`is_reference`, :func:`exports`),
and training's ``--init`` asks it which settings fix a model's tensor shapes and which of them
a model can grow in, rather than naming kinds, so a new kind is one entry in :data:`KINDS`.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import torch
from torch import nn

from ..choices import DEFAULT_MODEL
from ..errors import WeightsError
from ..models.adain import AdaINModel
from ..models.cin import CINConfig, CINTransformer
from ..models.decoder import AdaINDecoder, DecoderConfig
from ..models.lite import LiteConfig, LiteModel
from ..models.vgg import EncoderConfig, EncoderFamily, VGGEncoder
from ..nn.norms import NormName
from .files import WeightsMeta, load_state_strict, load_weights
from .records import install_command
from .store import installed_weights, resolve_weights, weights_home

__all__ = ["DEFAULT_MODEL", "KINDS", "ModelKind", "load_model", "missing_weights"]

ENCODER_KIND = "vgg-encoder"
ADAIN_KIND, LITE_KIND, CIN_KIND = AdaINModel.kind, LiteModel.kind, CINTransformer.kind

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


def adain_needs(config: dict) -> list[str]:
    """An AdaIN decoder's VGG encoder, by the store name of its family."""
    encoder = config.get("encoder")
    family = encoder.get("family") if isinstance(encoder, dict) else None
    try:
        return [encoder_name(family or EncoderFamily.NORMALISED)]
    except ValueError:  # an unknown family: loading the model says so
        return []


def required_weights(meta: WeightsMeta) -> list[str]:
    """The store names of the weights a model of ``meta`` cannot run without (an AdaIN
    decoder's VGG encoder; the lite and CIN models need none)."""
    kind = KINDS.get(meta.kind)
    return kind.needs(meta.config) if kind is not None else []


def missing_weights(meta: WeightsMeta, installed: set[str] | None = None) -> list[str]:
    """:func:`required_weights` that are not ``installed`` (default: on the search path)."""
    if installed is None:
        installed = {path.stem for path, _ in installed_weights()}
    return [name for name in required_weights(meta) if name not in installed]


def takes_style_images(meta: WeightsMeta) -> bool:
    """Whether a model of ``meta`` takes its styles from images (a CIN model holds its own)."""
    kind = KINDS.get(meta.kind)
    return kind is not None and kind.styles_from_images


def is_reference(model: nn.Module) -> bool:
    """Whether ``model`` is of the kind the public reference implementations run (AdaIN): the
    model of ``bench``'s plain pipeline."""
    kind = KINDS.get(getattr(model, "kind", None))
    return kind is not None and kind.reference


def exports(kind: str | None) -> bool:
    """Whether models of ``kind`` are written as ONNX by ``stylenorm export``."""
    found = KINDS.get(kind)
    return found is not None and found.exports


def encoder_from_file(path: Path, what: str = "") -> VGGEncoder:
    """The VGG encoder stored in ``path``; ``what`` prefixes errors (e.g. ``--encoder``)."""
    tensors, meta = load_weights(path)
    if meta.kind != ENCODER_KIND:
        raise WeightsError(f"{what}{path}: holds a {meta.kind!r} model, not a {ENCODER_KIND}")
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
    kind = KINDS.get(meta.kind)
    if kind is None:
        raise WeightsError(f"{path}: holds a {meta.kind!r} model; stylize takes {sorted(KINDS)}")
    try:
        model = kind.loader(meta.config, tensors, path)
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


Loader = Callable[[dict, dict[str, torch.Tensor], Path], nn.Module]


def needs_nothing(config: dict) -> list[str]:
    return []


# The settings that fix a model's tensor shapes, from its file's config, by the names of the
# training options that set them (a setting with a space in its name has no option).

def adain_architecture(config: dict) -> dict:
    decoder = DecoderConfig(**config.get("decoder", {}))
    if decoder.norm == NormName.NONE.value:
        return {"norm": decoder.norm}  # no norm layers: nothing affine to hold
    return {"norm": decoder.norm, "norm affine": decoder.affine}


def lite_architecture(config: dict) -> dict:
    lite = LiteConfig.from_dict(config)
    return {"widths": tuple(lite.widths), "res_blocks": lite.res_blocks,
            "style_mlp": lite.style_mlp, "style_deep": lite.style_deep,
            "half_blocks": lite.half_blocks}


def cin_architecture(config: dict) -> dict:
    cin = CINConfig(**config)  # its style count is its styles folder's, not an option
    return {"widths": tuple(cin.widths), "res_blocks": cin.res_blocks,
            "style count": cin.num_styles}


# A CIN model file may have fewer residual blocks than the model started from it
# (:func:`~..models.cin.grown_state` adds them as the identity).
CIN_GROWS = {"res_blocks": lambda in_file, asked: asked > in_file}

# The settings in which a lite model file may be smaller than the model started from it, which
# :func:`~..models.lite.grown_state` completes: setting -> rule(in the file, asked for).
LITE_GROWS = {
    "res_blocks": lambda in_file, asked: asked > in_file,
    "style_mlp": lambda in_file, asked: in_file == 0 < asked,
    "style_deep": lambda in_file, asked: in_file == 0 < asked,
    "half_blocks": lambda in_file, asked: asked > in_file,
}


@dataclass(frozen=True)
class ModelKind:
    """What the zoo knows of one kind of model file: ``loader(config, tensors, path)`` builds
    and fills the model; ``styles_from_images`` whether it takes its styles from images (else
    it holds its own, chosen by index); ``needs(config)`` the store names of the other weights
    it cannot run without; ``reference`` whether it is the model the public reference
    implementations run (``bench``'s plain pipeline); ``exports`` whether ``stylenorm export``
    writes it as ONNX; ``architecture(config)`` the settings that fix its tensor shapes
    (``--init``), and ``grows`` those in which a file's model may be smaller than the one
    trained from it (setting -> rule(in the file, asked for))."""

    name: str
    loader: Loader
    styles_from_images: bool
    architecture: Callable[[dict], dict]
    needs: Callable[[dict], list[str]] = needs_nothing
    reference: bool = False
    exports: bool = False
    grows: Mapping[str, Callable[[object, object], bool]] = field(default_factory=dict)


KINDS: dict[str, ModelKind] = {kind.name: kind for kind in (
    ModelKind(ADAIN_KIND, load_adain, styles_from_images=True,
              architecture=adain_architecture, needs=adain_needs, reference=True),
    ModelKind(LITE_KIND, load_lite, styles_from_images=True, architecture=lite_architecture,
              exports=True, grows=LITE_GROWS),
    ModelKind(CIN_KIND, load_cin, styles_from_images=False, architecture=cin_architecture,
              grows=CIN_GROWS),
)}
