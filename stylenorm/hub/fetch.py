"""Known public weight files: where to download them, their hashes, and how to install them."""

from __future__ import annotations

import hashlib
import os
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from tqdm import tqdm

from ..errors import WeightsError
from ..io.atomic import atomic_write
from .weights import weights_home


@dataclass(frozen=True)
class WeightsRecord:
    """A downloadable checkpoint: its address, the hash (or hash prefix) it must have, and the
    importer that converts it into the store."""

    name: str
    url: str
    sha256: str
    importer: str  # "encoder:<family>" or "decoder:<family>"
    description: str


KNOWN_WEIGHTS: dict[str, WeightsRecord] = {
    record.name: record
    for record in (
        WeightsRecord(
            name="vgg19-torchvision",
            url="https://download.pytorch.org/models/vgg19-dcbb9e9d.pth",
            sha256="dcbb9e9d",  # torchvision publishes the first 8 hex digits in the name
            importer="encoder:torchvision",
            description="torchvision's ImageNet VGG-19 (features up to relu4_1 are kept)",
        ),
    )
}


def _download(url: str, dest: Path, progress: bool) -> str:
    """Stream ``url`` into ``dest``; returns the SHA-256 of what arrived."""
    digest = hashlib.sha256()
    try:
        with urllib.request.urlopen(url, timeout=60) as response:
            total = int(response.headers.get("Content-Length") or 0) or None
            with open(dest, "wb") as out, tqdm(
                total=total, unit="B", unit_scale=True, desc=dest.name.split(".part")[0],
                disable=not progress,
            ) as bar:
                while chunk := response.read(1 << 20):
                    out.write(chunk)
                    digest.update(chunk)
                    bar.update(len(chunk))
    except (urllib.error.URLError, OSError, ValueError) as exc:
        raise WeightsError(f"{url}: download failed ({exc})") from None
    return digest.hexdigest()


def fetch(name: str, progress: bool = True, home: Path | None = None,
          records: dict[str, WeightsRecord] | None = None) -> Path:
    """Download the record ``name``, verify its hash, and import it into the store."""
    from .zoo import import_decoder, import_encoder

    records = KNOWN_WEIGHTS if records is None else records
    if name not in records:
        raise WeightsError(f"unknown weights {name!r}; known: {sorted(records)}")
    record = records[name]
    home = home or weights_home()
    home.mkdir(parents=True, exist_ok=True)
    download = home / f".{record.name}.download"
    hashes: list[str] = []

    def write(tmp: Path) -> None:
        hashes.append(_download(record.url, tmp, progress))
        if not hashes[0].startswith(record.sha256.lower()):
            raise WeightsError(
                f"{record.url}: SHA-256 {hashes[0]} does not match the expected {record.sha256}; "
                "the file was discarded"
            )

    atomic_write(download, write)
    try:
        role, family = record.importer.split(":")
        if role == "encoder":
            return import_encoder(download, family, home)
        return import_decoder(download, record.name, family, home)
    finally:
        os.unlink(download)
