"""Importers of published ``.pth`` checkpoints into the store: read without unpickling code
(``weights_only=True``), tensors renamed to stylenorm's layout with every shape checked, written
as self-describing weights files."""

from __future__ import annotations

import os
import pickle
import re
import warnings
from pathlib import Path

import torch

from ..choices import EncoderFamily
from ..errors import WeightsError
from ..models.decoder import AdaINDecoder, DecoderConfig, adain_decoder_key_map
from ..models.vgg import EncoderConfig, VGGEncoder, sequential_key_map
from .files import check_file, save_weights
from .records import Converts, Importer
from .store import store_path, weights_home
from .zoo import ADAIN_KIND, ENCODER_KIND, encoder_name


def pickle_refusal(exc: pickle.UnpicklingError) -> str:
    """Why a .pth was refused, from torch's weights-only error (without its advice to unpickle
    the file unsafely)."""
    found = re.search(r"GLOBAL ([\w.]+)|global: ?([\w.]+)", str(exc), re.I)
    if found:
        why = f"its pickle calls {found[1] or found[2]}, which a file of weights does not need"
    else:
        why = "its pickle uses instructions that safe loading does not allow"
    return (f"not a plain tensor file: {why}; unpickling it could run code, so it was not "
            "unpickled (a state_dict of tensors saved by torch.save loads)")


def load_pth(path: str | os.PathLike) -> dict[str, torch.Tensor]:
    """A ``state_dict`` from a ``.pth`` file, unpickled with ``weights_only=True`` only."""
    path = Path(path)
    check_file(path)
    with path.open("rb") as handle:
        head = handle.read(2)
    if head != b"PK" and head[:1] != b"\x80":  # a zip archive (torch.save) or a bare pickle
        raise WeightsError(f"{path}: not a PyTorch .pth file (neither a zip archive nor a pickle)")
    try:
        with warnings.catch_warnings():
            # torch's note on the pickle protocol of a plain pickle: the refusal below says more
            warnings.filterwarnings("ignore", message=".*pickle protocol", category=UserWarning)
            state = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        raise WeightsError(f"{path}: refused to load: {pickle_refusal(exc)}") from None
    except MemoryError:
        raise
    except Exception as exc:  # RuntimeError, EOFError, BadZipFile, KeyError, ... on bad bytes
        reason = " ".join(str(exc).split()[:30]) or type(exc).__name__
        raise WeightsError(f"{path}: not a readable .pth file ({reason})") from None
    if isinstance(state, dict) and "state_dict" in state and isinstance(state["state_dict"], dict):
        state = state["state_dict"]
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise WeightsError(f"{path}: expected a state_dict of tensors; got {type(state).__name__}")
    return state


def rename_state(
    state: dict[str, torch.Tensor],
    key_map: dict[str, str],
    expected: dict[str, torch.Tensor],
    source: Path,
    ignore_extra=lambda key: False,
) -> dict[str, torch.Tensor]:
    """Our keys from a public layout: ``key_map[ours] = theirs``; shapes checked one by one."""
    out = {}
    for ours, theirs in key_map.items():
        if theirs not in state:
            raise WeightsError(f"{source}: missing tensor {theirs!r} (for {ours})")
        value = state[theirs]
        if value.shape != expected[ours].shape:
            raise WeightsError(
                f"{source}: tensor {theirs!r} has shape {tuple(value.shape)}; "
                f"expected {tuple(expected[ours].shape)}"
            )
        out[ours] = value.float()
    extra = sorted(k for k in set(state) - set(key_map.values()) if not ignore_extra(k))
    if extra:
        raise WeightsError(f"{source}: unexpected tensors {extra[:5]} for this layout")
    return out



def import_encoder(
    pth: str | os.PathLike, family: str | EncoderFamily = EncoderFamily.NORMALISED,
    home: Path | None = None,
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
    return save_weights(path, tensors, ENCODER_KIND, config.to_dict(), provenance)


def import_decoder(
    pth: str | os.PathLike, name: str, family: str | EncoderFamily = EncoderFamily.NORMALISED,
    home: Path | None = None, shadow_shipped: bool = False,
) -> Path:
    """Convert a public PyTorch-AdaIN ``decoder.pth`` into the store as model ``name`` (a plain
    name; one of a shipped model only with ``shadow_shipped``)."""
    path = store_path(name, home, shadow_shipped)
    pth = Path(pth)
    decoder = AdaINDecoder(DecoderConfig())
    tensors = rename_state(load_pth(pth), adain_decoder_key_map(), decoder.state_dict(), pth)
    config = {"decoder": DecoderConfig().to_dict(),
              "encoder": {"family": EncoderFamily(family).value}}
    provenance = {"imported_from": pth.name, "layout": "public PyTorch AdaIN decoder"}
    return save_weights(path, tensors, ADAIN_KIND, config, provenance)


def run_importer(importer: Importer, pth: Path, name: str, home: Path | None = None) -> Path:
    """Convert ``pth`` as ``importer`` says: an encoder under its family's name, a decoder
    under ``name``."""
    if importer.converts is Converts.ENCODER:
        return import_encoder(pth, importer.family, home)
    return import_decoder(pth, name, importer.family, home)
