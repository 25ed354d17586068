"""``stylenorm weights fetch`` against a local HTTP server (no network): every known record,
hash checks, failed and short downloads leaving nothing behind, what a model still needs."""

from __future__ import annotations

import dataclasses
import hashlib
import http.server
import re
import tempfile
import threading
from pathlib import Path

import pytest
import torch
from test_weights import public_encoder_state
from typer.testing import CliRunner

from stylenorm.cli.app import app
from stylenorm.errors import WeightsError
from stylenorm.hub.fetch import fetch, fetch_plan
from stylenorm.hub.files import load_weights, save_weights
from stylenorm.hub.importers import import_encoder
from stylenorm.hub.records import (
    KNOWN_WEIGHTS,
    Converts,
    Importer,
    WeightsRecord,
    install_command,
)
from stylenorm.hub.store import store_path
from stylenorm.models.decoder import AdaINDecoder, DecoderConfig, adain_decoder_key_map
from stylenorm.models.vgg import EncoderConfig, EncoderFamily

runner = CliRunner()
SHORT = 1000  # bytes the /short path announces; it sends 100 and closes


class Handler(http.server.SimpleHTTPRequestHandler):
    """Files of the served folder, and ``/short.pth``: a body that stops early."""

    requests: list[str] = []

    def do_GET(self):  # noqa: N802 (http.server's name)
        self.requests.append(self.path)
        if self.path == "/short.pth":
            self.send_response(200)
            self.send_header("Content-Length", str(SHORT))
            self.end_headers()
            self.wfile.write(b"\x80" * 100)
            self.wfile.flush()
            self.close_connection = True
            return
        super().do_GET()

    def log_message(self, *args):
        pass


@pytest.fixture
def server(tmp_path):
    """Serve ``tmp_path/www`` on 127.0.0.1; yields the folder, the base URL and the request
    log."""
    root = tmp_path / "www"
    root.mkdir()
    handler = type("TestHandler", (Handler,), {"requests": [],
                                               "__init__": _serve_from(root)})
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield root, f"http://127.0.0.1:{httpd.server_address[1]}", handler.requests
    httpd.shutdown()
    httpd.server_close()


def _serve_from(root: Path):
    def init(self, *args, **kwargs):
        Handler.__init__(self, *args, directory=str(root), **kwargs)
    return init


@pytest.fixture
def own_tmp(tmp_path, monkeypatch) -> Path:
    """The temporary folder downloads go to, empty, to check that nothing is left there."""
    folder = tmp_path / "tmp"
    folder.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(folder))
    return folder


@pytest.fixture(scope="session")
def public_files(tmp_path_factory) -> dict[str, bytes]:
    """The bytes of an encoder and a decoder .pth in the public PyTorch-AdaIN layouts."""
    folder = tmp_path_factory.mktemp("public")
    torch.manual_seed(0)
    torch.save(public_encoder_state("normalised", True), folder / "vgg_normalised.pth")
    ours = AdaINDecoder().state_dict()
    torch.save({theirs: torch.randn_like(ours[key])
                for key, theirs in adain_decoder_key_map().items()}, folder / "decoder.pth")
    return {name: (folder / name).read_bytes() for name in ("vgg_normalised.pth", "decoder.pth")}


def served(server, public_files, monkeypatch) -> dict[str, WeightsRecord]:
    """The known records of the AdaIN files, pointed at the local server with the hashes of
    the served files (the real ones' hashes are what the records hold)."""
    root, base, _ = server
    for name in ("vgg19-normalised", "adain"):
        record = KNOWN_WEIGHTS[name]
        data = public_files[record.file_name]
        (root / record.file_name).write_bytes(data)
        monkeypatch.setitem(KNOWN_WEIGHTS, name, dataclasses.replace(
            record, url=f"{base}/{record.file_name}", sha256=hashlib.sha256(data).hexdigest()))
    return KNOWN_WEIGHTS


def names_in(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir()) if folder.exists() else []


@pytest.mark.parametrize("name", sorted(KNOWN_WEIGHTS))
def test_every_known_record_is_complete(name, tmp_path):
    record = KNOWN_WEIGHTS[name]
    assert record.name == name and record.url.startswith("https://")
    assert record.file_name.endswith(".pth")
    assert re.fullmatch(r"[0-9a-f]{64}", record.sha256), "a full SHA-256"
    assert record.size > 1_000_000 and record.licence and record.description and record.unlocks
    assert isinstance(record.importer, Importer)
    assert isinstance(record.importer.converts, Converts)
    assert isinstance(record.importer.family, EncoderFamily)
    assert all(r in KNOWN_WEIGHTS and r != name for r in record.requires)
    assert install_command(name) == f"stylenorm weights fetch {name}"
    assert store_path(name, tmp_path).name == f"{name}.safetensors"  # a plain store name


def test_every_encoder_the_models_use_can_be_fetched():
    from stylenorm.hub.zoo import encoder_name

    for family in EncoderFamily:
        assert install_command(encoder_name(family)) is not None


def test_fetch_installs_what_weights_import_installs(tmp_path, server, public_files,
                                                     monkeypatch, own_tmp):
    known = served(server, public_files, monkeypatch)
    home = tmp_path / "store"
    path = fetch("vgg19-normalised", progress=False, home=home, records=known)
    assert names_in(home) == ["vgg19-normalised.safetensors"] and names_in(own_tmp) == []
    (tmp_path / "by_hand").mkdir()
    by_hand = tmp_path / "by_hand" / "vgg_normalised.pth"
    by_hand.write_bytes(public_files["vgg_normalised.pth"])
    imported = import_encoder(by_hand, "normalised", tmp_path / "imported")
    (fetched, fetched_meta), (expected, expected_meta) = load_weights(path), load_weights(imported)
    assert fetched_meta == expected_meta
    assert fetched.keys() == expected.keys()
    assert all(torch.equal(fetched[k], expected[k]) for k in expected)


def test_plan_puts_requirements_first_and_skips_what_is_installed(tmp_path, server,
                                                                  public_files, monkeypatch):
    known = served(server, public_files, monkeypatch)
    home = tmp_path / "store"
    assert [r.name for r in fetch_plan("adain", home)] == ["vgg19-normalised", "adain"]
    fetch("vgg19-normalised", progress=False, home=home, records=known)
    assert [r.name for r in fetch_plan("adain", home)] == ["adain"]
    fetch("adain", progress=False, home=home, records=known)
    assert fetch_plan("adain", home) == []
    assert [r.name for r in fetch_plan("adain", home, force=True)] == ["adain"]
    with pytest.raises(WeightsError, match="unknown weights 'nope'.*vgg19-normalised"):
        fetch_plan("nope", home)


def record_for(url: str, sha256: str = "0" * 64) -> dict[str, WeightsRecord]:
    return {"x": WeightsRecord("x", url, sha256, 1000, "MIT", Importer(Converts.ENCODER), "test",
                               "tests")}


def test_wrong_hash_keeps_nothing(tmp_path, server, own_tmp):
    root, base, _ = server
    (root / "file.pth").write_bytes(b"tampered")
    home = tmp_path / "store"
    with pytest.raises(WeightsError, match=r"file\.pth: SHA-256 [0-9a-f]{64} does not match"):
        fetch("x", progress=False, home=home, records=record_for(f"{base}/file.pth"))
    assert names_in(home) == [] and names_in(own_tmp) == []


def test_missing_file_is_one_clear_error(tmp_path, server, own_tmp):
    _, base, _ = server
    with pytest.raises(WeightsError, match=r"absent\.pth: download failed \(.*404"):
        fetch("x", progress=False, home=tmp_path / "s", records=record_for(f"{base}/absent.pth"))
    assert names_in(tmp_path / "s") == [] and names_in(own_tmp) == []


def test_short_download_keeps_nothing(tmp_path, server, own_tmp):
    _, base, _ = server
    with pytest.raises(WeightsError, match=f"ended after 100 of {SHORT} bytes"):
        fetch("x", progress=False, home=tmp_path / "s", records=record_for(f"{base}/short.pth"))
    assert names_in(tmp_path / "s") == [] and names_in(own_tmp) == []


def test_a_good_download_of_a_bad_file_installs_nothing(tmp_path, server, own_tmp):
    root, base, _ = server
    (root / "junk.pth").write_bytes(b"not a checkpoint")
    digest = hashlib.sha256(b"not a checkpoint").hexdigest()
    with pytest.raises(WeightsError, match=r"junk\.pth: not a PyTorch \.pth file"):
        fetch("x", progress=False, home=tmp_path / "s",
              records=record_for(f"{base}/junk.pth", digest))
    assert names_in(tmp_path / "s") == [] and names_in(own_tmp) == []


def test_cli_shows_size_and_licence_then_installs_model_and_encoder(
        tmp_path, server, public_files, monkeypatch):
    served(server, public_files, monkeypatch)
    monkeypatch.setenv("STYLENORM_HOME", str(tmp_path / "store"))
    result = runner.invoke(app, ["weights", "fetch", "adain", "--yes", "--no-progress"])
    assert result.exit_code == 0, result.output
    assert "licence: MIT" in result.output and "about 14 MB" in result.output
    assert result.output.count("installed ") == 2
    assert names_in(tmp_path / "store") == ["adain.safetensors", "vgg19-normalised.safetensors"]
    listing = runner.invoke(app, ["weights", "list"]).output
    assert "needs" not in listing
    again = runner.invoke(app, ["weights", "fetch", "adain", "--yes"])
    assert again.exit_code == 0 and "already installed" in again.output


def test_cli_asks_first_and_a_no_downloads_nothing(tmp_path, server, public_files, monkeypatch):
    _, _, requests = server
    served(server, public_files, monkeypatch)
    monkeypatch.setenv("STYLENORM_HOME", str(tmp_path / "store"))
    result = runner.invoke(app, ["weights", "fetch", "vgg19-normalised"], input="n\n")
    assert result.exit_code == 1 and "download 80 MB" in result.output
    assert result.output.endswith("error: nothing downloaded (--yes downloads without asking)\n")
    assert requests == [] and names_in(tmp_path / "store") == []


def test_cli_unknown_name_is_one_line(tmp_path, monkeypatch):
    monkeypatch.setenv("STYLENORM_HOME", str(tmp_path))
    result = runner.invoke(app, ["weights", "fetch", "vgg20"])
    assert result.exit_code == 1
    assert result.output.strip() == ("error: unknown weights 'vgg20'; `stylenorm weights fetch` "
                                     "knows ['adain', 'vgg19-normalised', 'vgg19-torchvision']")


def test_list_marks_what_a_model_needs_and_what_can_be_fetched(tmp_path, monkeypatch):
    monkeypatch.setenv("STYLENORM_HOME", str(tmp_path))
    config = {"decoder": DecoderConfig().to_dict(), "encoder": EncoderConfig().to_dict()}
    save_weights(tmp_path / "mine.safetensors", AdaINDecoder().state_dict(), "adain", config)
    lines = runner.invoke(app, ["weights", "list"]).output.splitlines()
    mine = next(line for line in lines if line.startswith("mine "))
    assert mine.endswith("(needs vgg19-normalised: stylenorm weights fetch vgg19-normalised)")
    lite = next(line for line in lines if line.startswith("lite "))
    assert "needs" not in lite  # the shipped lite model needs no VGG
    assert any(line.split()[:2] == ["vgg19-normalised", "80"] for line in lines)
