"""The public weight files stylenorm can download: where each is published, its hash, size and
licence, and what it installs (data only; :mod:`.fetch` downloads them)."""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum

from ..choices import EncoderFamily

ADAIN_RELEASE = "https://github.com/naoto0804/pytorch-AdaIN/releases/download/v0.0.0"


class Converts(str, Enum):
    """What a public checkpoint holds, hence which importer converts it."""

    ENCODER = "encoder"  # a VGG-19, installed under its family's standard name
    DECODER = "decoder"  # a PyTorch-AdaIN decoder, installed under the record's name


@dataclass(frozen=True)
class Importer:
    """How ``stylenorm weights import`` converts a checkpoint: its role and VGG family."""

    converts: Converts
    family: EncoderFamily = EncoderFamily.NORMALISED


@dataclass(frozen=True)
class WeightsRecord:
    """A downloadable checkpoint, installed in the store under ``name``.

    ``sha256`` is the file's full SHA-256 (or the hex prefix a publisher puts in the file name);
    ``size`` its size in bytes, ``size_exact`` False where that is the publisher's round figure;
    ``importer`` the converter into the store (as ``stylenorm weights import`` does);
    ``requires`` the records the installed model cannot run without.
    """

    name: str
    url: str
    sha256: str
    size: int
    licence: str
    importer: Importer
    description: str
    unlocks: str
    requires: tuple[str, ...] = ()
    size_exact: bool = True

    @property
    def file_name(self) -> str:
        return self.url.rsplit("/", 1)[-1]

    def size_text(self) -> str:
        megabytes = f"{self.size / 1e6:.0f} MB" if self.size >= 1e7 else f"{self.size / 1e6:.1f} MB"
        return megabytes if self.size_exact else f"about {megabytes}"


KNOWN_WEIGHTS: dict[str, WeightsRecord] = {
    record.name: record
    for record in (
        WeightsRecord(
            name="vgg19-normalised",
            url=f"{ADAIN_RELEASE}/vgg_normalised.pth",
            sha256="804ca2835ecf7539f0cd2a7ac3c18ce81e6f8468969ae7117ac0c148d286bb4a",
            size=80_102_481,
            licence="MIT (naoto0804/pytorch-AdaIN); a conversion of the AdaIN authors' Torch "
                    "file, whose VGG-19 derives from Oxford VGG's ImageNet model (CC BY 4.0)",
            importer=Importer(Converts.ENCODER, EncoderFamily.NORMALISED),
            description="the normalised VGG-19 of AdaIN (vgg_normalised.pth; layers up to "
                        "relu4_1 are kept)",
            unlocks="training (the VGG loss network of train adain/lite/cin) and every AdaIN "
                    "model (adain-stylenorm, adain)",
        ),
        WeightsRecord(
            name="adain",
            url=f"{ADAIN_RELEASE}/decoder.pth",
            sha256="379ca41d59f3a37eed3599bbbc2560c19da5c458870a5ffd3a9dd41aa88f9472",
            size=14_000_000,
            size_exact=False,
            licence="MIT (naoto0804/pytorch-AdaIN); converted from the AdaIN authors' Torch "
                    "release (xunhuang1995/AdaIN-style)",
            importer=Importer(Converts.DECODER, EncoderFamily.NORMALISED),
            description="the reference AdaIN decoder (decoder.pth)",
            unlocks="the reference AdaIN model: --model adain, and the teacher of "
                    "train lite --teacher adain and train cin --teacher adain",
            requires=("vgg19-normalised",),
        ),
        WeightsRecord(
            name="vgg19-torchvision",
            url="https://download.pytorch.org/models/vgg19-dcbb9e9d.pth",
            sha256="dcbb9e9dad569fff7a846263a77324fc34978fea2bfb039c012d710e1776ae44",
            size=574_673_361,
            licence="BSD-3-Clause (torchvision); trained on ImageNet",
            importer=Importer(Converts.ENCODER, EncoderFamily.TORCHVISION),
            description="torchvision's ImageNet VGG-19 (features up to relu4_1 are kept)",
            unlocks="--encoder vgg19-torchvision: training with torchvision's VGG-19 as the "
                    "loss network, and AdaIN decoders trained on it",
        ),
    )
}


def install_command(name: str) -> str | None:
    """The one command that installs the weights ``name``, if stylenorm knows where they are."""
    return f"stylenorm weights fetch {name}" if name in KNOWN_WEIGHTS else None
