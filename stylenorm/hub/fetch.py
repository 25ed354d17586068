"""Download the known public weight files (:mod:`.records`): stream each into a temporary folder
outside the store, check its SHA-256, and import it into the store as ``stylenorm weights
import`` does. A failed, short or tampered download leaves nothing in the store."""

from __future__ import annotations

import hashlib
import http.client
import tempfile
import urllib.error
import urllib.request
from pathlib import Path

from tqdm import tqdm

from ..errors import WeightsError
from ..runtime import on_terminal
from .files import SUFFIX
from .records import KNOWN_WEIGHTS, WeightsRecord
from .store import weights_home

__all__ = ["KNOWN_WEIGHTS", "WeightsRecord", "fetch", "fetch_plan", "installed_in"]


def _known(name: str, records: dict[str, WeightsRecord]) -> WeightsRecord:
    if name not in records:
        raise WeightsError(f"unknown weights {name!r}; `stylenorm weights fetch` knows "
                           f"{sorted(records)}")
    return records[name]


def installed_in(home: Path, name: str) -> Path | None:
    """The store file of weights ``name`` in ``home``, if there is one."""
    path = home / f"{name}{SUFFIX}"
    return path if path.is_file() else None


def fetch_plan(name: str, home: Path | None = None, force: bool = False,
               records: dict[str, WeightsRecord] | None = None) -> list[WeightsRecord]:
    """What ``stylenorm weights fetch name`` downloads: the records it requires that ``home``
    lacks, then the record itself (unless installed there and not ``force``)."""
    records = KNOWN_WEIGHTS if records is None else records
    home = home or weights_home()
    record = _known(name, records)
    plan = [_known(r, records) for r in record.requires if installed_in(home, r) is None]
    if force or installed_in(home, name) is None:
        plan.append(record)
    return plan


def _download(url: str, dest: Path, progress: bool) -> str:
    """Stream ``url`` into ``dest``; the SHA-256 of what arrived. A download that ends before
    its announced length is an error."""
    digest = hashlib.sha256()
    received, total = 0, None
    try:
        with urllib.request.urlopen(url, timeout=60) as response:
            total = int(response.headers.get("Content-Length") or 0) or None
            with open(dest, "wb") as out, tqdm(total=total, unit="B", unit_scale=True,
                                               desc=dest.name,
                                               disable=not on_terminal(progress)) as bar:
                while chunk := response.read(1 << 20):
                    out.write(chunk)
                    digest.update(chunk)
                    received += len(chunk)
                    bar.update(len(chunk))
    except http.client.IncompleteRead as exc:
        raise WeightsError(f"{url}: the download ended after {received + len(exc.partial)} of "
                           f"{total} bytes; nothing was installed") from None
    except (urllib.error.URLError, http.client.HTTPException, OSError, ValueError) as exc:
        if isinstance(exc, urllib.error.HTTPError):
            reason = f"HTTP {exc.code} {exc.reason}"
        else:
            reason = getattr(exc, "reason", None) or exc
        raise WeightsError(f"{url}: download failed ({reason}); nothing was installed") from None
    if total is not None and received != total:
        raise WeightsError(f"{url}: the download ended after {received} of {total} bytes; "
                           "nothing was installed")
    return digest.hexdigest()


def fetch(name: str, progress: bool = True, home: Path | None = None,
          records: dict[str, WeightsRecord] | None = None) -> Path:
    """Download the record ``name`` (not what it requires: see :func:`fetch_plan`), verify its
    hash, and import it into the store ``home``; the installed file."""
    from .importers import run_importer

    record = _known(name, KNOWN_WEIGHTS if records is None else records)
    home = home or weights_home()
    with tempfile.TemporaryDirectory(prefix="stylenorm-fetch-") as folder:
        download = Path(folder) / record.file_name  # the import records this name
        digest = _download(record.url, download, progress)
        if not digest.startswith(record.sha256.lower()):
            raise WeightsError(f"{record.url}: SHA-256 {digest} does not match the expected "
                               f"{record.sha256}; the file was discarded")
        try:
            home.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise WeightsError(f"{home}: cannot create the weights store "
                               f"({exc.strerror or exc})") from None
        return run_importer(record.importer, download, record.name, home)
