"""``stylenorm serve``: the engine's limits, queue, model cache and cleanup; the HTTP API against
a real server on a free port; the page in a real headless Chromium (Playwright)."""

from __future__ import annotations

import contextlib
import io
import os
import shutil
import signal
import socket
import struct
import subprocess
import sys
import threading
import time
import zlib
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest
from conftest import REPO, make_image
from PIL import Image
from web_browser import chromium_path

from stylenorm.errors import OptionError
from stylenorm.web.service import ModelCache, RequestGate, ServeConfig, ServerBusy
from stylenorm.web.sessions import SessionFiles

CAT = REPO / "samples" / "content" / "cat.jpg"  # 451x300
STROKES, MOSAIC = (REPO / "samples" / "style" / name for name in ("strokes.png", "mosaic.png"))


# --------------------------------------------------------------------------- the engine


def test_gate_runs_one_lets_some_wait_and_refuses_the_rest():
    gate, started, release = RequestGate(workers=1, waiting=1), threading.Event(), threading.Event()
    order = []

    def hold(name):
        with gate.slot():
            order.append(name)
            started.set()
            release.wait(5)

    first = threading.Thread(target=hold, args=("first",))
    first.start()
    started.wait(5)
    second = threading.Thread(target=hold, args=("second",))
    second.start()
    time.sleep(0.1)
    assert order == ["first"]  # the second waits its turn
    with pytest.raises(ServerBusy, match="busy"), gate.slot():
        pass
    release.set()
    first.join(5), second.join(5)
    assert order == ["first", "second"] and gate.admitted == 0
    with gate.slot():  # free again
        pass


def test_model_cache_loads_each_model_once_and_drops_the_least_recent():
    loads = []
    cache = ModelCache(capacity=2, load=lambda name, device: loads.append(name) or object())
    first = cache.get("a")
    assert cache.get("a") is first
    cache.get("b"), cache.get("a"), cache.get("c")
    assert loads == ["a", "b", "c"] and list(cache.loaded) == ["a", "c"]


def test_models_lacking_weights_are_not_offered_and_the_operator_is_told(tmp_path,
                                                                        monkeypatch):
    """The shipped adain-stylenorm needs the VGG encoder: without it the page and the API
    leave it out (a request for it says why, without command-line advice), and serve prints
    the command that installs it; the CIN model never shows (it takes no style images)."""
    from stylenorm.web.server import unavailable_notes
    from stylenorm.web.service import (
        StyleService,
        WebRequest,
        model_choices,
        unavailable_models,
        visitor_message,
    )

    monkeypatch.setenv("STYLENORM_HOME", str(tmp_path / "empty"))
    assert model_choices() == ["lite"]
    assert unavailable_models() == {"adain-stylenorm": ["vgg19-normalised"]}
    assert unavailable_notes() == ["note: adain-stylenorm is not offered: it needs "
                                   "vgg19-normalised (stylenorm weights fetch vgg19-normalised)"]
    content = make_image(tmp_path / "c.png")
    request = WebRequest(content, [content], model="adain-stylenorm")
    with pytest.raises(OptionError, match="adain-stylenorm' needs weights") as refused:
        StyleService(ServeConfig()).check(request)
    assert "stylenorm weights" not in visitor_message(refused.value, [])


def test_models_with_their_weights_are_offered(random_store):
    from stylenorm.web.service import model_choices, unavailable_models

    assert model_choices() == ["adain", "adain-stylenorm", "lite"]
    assert unavailable_models() == {}


def test_service_reports_tile_progress_and_keeps_the_model(tmp_path, one_thread):
    from stylenorm.inference.stylize import StylizeOptions
    from stylenorm.web.service import StyleService, WebRequest

    service, seen = StyleService(ServeConfig(device="cpu")), []
    request = WebRequest(CAT, [STROKES], options=StylizeOptions(
        size=128, style_size=64, tile=True, tile_size=64))
    output = service.stylize(request, tmp_path / "out.png", on_tile=lambda *n: seen.append(n))
    assert Image.open(output).size == (192, 128)
    total = seen[-1][1]
    assert total > 1 and seen == [(k, total) for k in range(1, total + 1)]
    stylizer = service.models.get("lite")
    assert stylizer.on_tile is None  # the next request does not report to this one
    service.stylize(request, tmp_path / "again.png")
    assert service.models.get("lite") is stylizer and len(seen) == total


def test_session_files_close_removes_only_that_session_inside_the_root(tmp_path):
    root, outside = tmp_path / "root", make_image(tmp_path / "outside.png")
    files = SessionFiles(root)
    mine = make_image(root / "abc" / "mine.png")
    theirs = make_image(root / "def" / "theirs.png")
    result = files.folder("session1") / "result.png"
    make_image(result)
    files.add("session1", [mine, outside, None])
    files.add("session2", [theirs])
    files.close("session1")
    assert not mine.exists() and not (root / "abc").exists() and not result.exists()
    assert theirs.exists() and outside.exists()


def test_painted_strokes_become_a_white_on_black_mask(tmp_path):
    pytest.importorskip("gradio")
    from stylenorm.web.page import painted_mask

    layer = Image.new("RGBA", (40, 30), (0, 0, 0, 0))
    layer.paste((255, 255, 255, 255), (0, 0, 20, 30))
    path = painted_mask({"background": None, "layers": [layer], "composite": None}, tmp_path)
    mask = np.asarray(Image.open(path))
    assert mask.shape == (30, 40) and mask[:, :20].min() == 255 and mask[:, 20:].max() == 0
    empty = {"layers": [Image.new("RGBA", (40, 30))]}
    assert painted_mask(empty, tmp_path) is None and painted_mask(None, tmp_path) is None


def test_serve_without_gradio_says_how_to_install_it(monkeypatch):
    import importlib.util

    from typer.testing import CliRunner

    from stylenorm.cli.app import app

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *a: None if name == "gradio" else real(name, *a))
    result = CliRunner().invoke(app, ["serve"])
    assert result.exit_code == 1
    assert result.output.strip() == ('error: the web app needs Gradio: pip install -e ".[web]" '
                                     'in the stylenorm repository folder')


def test_serve_listens_on_this_machine_only_by_default(monkeypatch):
    pytest.importorskip("gradio")
    from typer.testing import CliRunner

    from stylenorm.cli.app import app
    from stylenorm.web import server

    seen = []
    monkeypatch.setattr(server, "serve", lambda config, say: seen.append(config))
    result = CliRunner().invoke(app, ["serve", "--max-upload-mb", "3", "--queue-size", "1"])
    assert result.exit_code == 0, result.output
    (config,) = seen
    assert (config.host, config.port, config.model) == ("127.0.0.1", 7860, "lite")
    assert config.max_upload_bytes == 3 * 2**20 and config.queue_size == 1
    assert config.samples == REPO / "samples"


def test_serve_offers_a_model_file_under_a_name_and_refuses_what_the_page_cannot_use(
        tmp_path, monkeypatch):
    """``--model FILE``: the page and the API offer it by its stem (``stem (folder)`` when an
    installed model has that name), the installed model's own file by its name; a CIN model
    and an unknown name are refused in one line before any server starts."""
    pytest.importorskip("gradio")
    from typer.testing import CliRunner

    from stylenorm.cli.app import app
    from stylenorm.web import server

    monkeypatch.setenv("STYLENORM_HOME", str(tmp_path / "empty"))
    shipped = REPO / "weights" / "lite.safetensors"
    tuned, other = tmp_path / "tuned.safetensors", tmp_path / "run" / "lite.safetensors"
    other.parent.mkdir()
    shutil.copy(shipped, tuned), shutil.copy(shipped, other)
    seen = []
    monkeypatch.setattr(server, "serve", lambda config, say: seen.append(config))
    for given, name, files in [(tuned, "tuned", {"tuned": tuned}),
                               (other, "lite (run)", {"lite (run)": other}),
                               (shipped, "lite", {})]:
        result = CliRunner().invoke(app, ["serve", "--model", str(given)])
        assert result.exit_code == 0, result.output
        assert (seen[-1].model, seen[-1].model_files) == (name, files)
    for given, code, message in [
            ("cin-8styles", 2, "error: --model cin-8styles: a cin model holds its own styles"),
            ("nothing", 1, "error: no weights named 'nothing'")]:
        result = CliRunner().invoke(app, ["serve", "--model", given])
        assert result.exit_code == code and result.output.startswith(message), result.output
        assert len(result.output.strip().splitlines()) == 1
    assert len(seen) == 3


def test_a_model_file_is_listed_and_used_by_the_page_and_the_api(tmp_path, one_thread):
    pytest.importorskip("gradio")
    from fastapi.testclient import TestClient

    from stylenorm.web.server import build_app

    tuned = tmp_path / "tuned.safetensors"
    shutil.copy(REPO / "weights" / "lite.safetensors", tuned)
    config = ServeConfig(model="tuned", model_files={"tuned": tuned}, device="cpu")
    app = build_app(config, tmp_path / "cache")
    client = TestClient(app)
    models = client.get("/api/models").json()
    assert models["default"] == "tuned" and models["models"][-1] == "tuned"
    assert "lite" in models["models"]
    opened = [("content", ("cat.jpg", CAT.read_bytes())),
              ("style", ("strokes.png", STROKES.read_bytes()))]
    response = client.post("/api/stylize", files=opened,
                           data={"model": "tuned", "size": "48", "style_size": "48"})
    assert png_of(response).size == (72, 48)
    assert app.state.service.models.loaded["tuned"].name == str(tuned)


@pytest.mark.slow
@pytest.mark.parametrize("stop", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "Ctrl-C"])
def test_serve_process_stops_cleanly_and_removes_its_folder(tmp_path, stop):
    pytest.importorskip("gradio")
    import httpx

    port = free_port()
    env = {**os.environ, "TMPDIR": str(tmp_path), "PYTHONPATH": str(REPO)}
    process = subprocess.Popen([sys.executable, "-m", "stylenorm", "serve", "--port", str(port)],
                               env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                               text=True)
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(f"http://127.0.0.1:{port}/api/models").status_code == 200:
                    break
            time.sleep(0.2)
        assert list(tmp_path.glob("stylenorm-web-*")), "the server made no private folder"
        process.send_signal(stop)
        output, _ = process.communicate(timeout=30)
    finally:
        process.kill()
    assert process.returncode == 0, output
    assert "stopped; temporary files removed" in output and "Traceback" not in output
    assert not list(tmp_path.glob("stylenorm-web-*"))


# --------------------------------------------------------------------------- a real server


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    """A ``stylenorm serve`` app on a free port in a thread: (base URL, service, cache)."""
    pytest.importorskip("gradio")
    uvicorn = pytest.importorskip("uvicorn")
    from stylenorm.web.server import build_app

    cache = tmp_path_factory.mktemp("web_cache")
    config = ServeConfig(port=free_port(), samples=REPO / "samples", max_pixels=4_000_000,
                         max_upload_bytes=2 * 2**20, max_size=1024, queue_size=2)
    app = build_app(config, cache)
    server = uvicorn.Server(uvicorn.Config(app, host=config.host, port=config.port,
                                           log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.05)
    assert server.started, "the server did not start in 30 s"
    yield f"http://{config.host}:{config.port}", app.state.service, cache
    server.should_exit = True
    thread.join(10)


def post(base, files, data=None, timeout=60):
    import httpx

    opened = [(name, (Path(p).name, Path(p).read_bytes())) for name, p in files]
    return httpx.post(f"{base}/api/stylize", files=opened, data=data or {}, timeout=timeout)


def png_of(response) -> Image.Image:
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "image/png"
    return Image.open(io.BytesIO(response.content))


def test_api_stylizes_with_two_weighted_styles(server):
    base, service, _ = server
    response = post(base, [("content", CAT), ("style", STROKES), ("style", MOSAIC)],
                    {"size": "64", "style_size": "64", "style_weights": "0.7,0.3"})
    image = png_of(response)
    assert image.size == (96, 64)  # 451x300 with a shorter side of 64
    assert np.asarray(image.convert("RGB")).std() > 10  # not blank
    assert list(service.models.loaded) == ["lite"]


def declared_png(side: int) -> bytes:
    """A small PNG whose header declares ``side x side`` pixels."""
    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(
            ">I", zlib.crc32(kind + data))
    header = struct.pack(">IIBBBBB", side, side, 8, 0, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header)
            + chunk(b"IDAT", zlib.compress(b"\0" * (side + 1))) + chunk(b"IEND", b""))


@pytest.mark.parametrize(("content_bytes", "data", "status", "message"), [
    (b"this is not an image", {}, 400, "content.png: not a readable image"),
    (declared_png(30000), {}, 400, "could be decompression bomb"),
    (declared_png(3000), {}, 400, "9000000 pixels); this server's limit is 4000000"),
    (b"\0" * (2 * 2**20 + 1), {}, 413, "over the limit of 2 MiB"),
    (None, {"alpha": "2"}, 422, "alpha must be a number between 0 and 1"),
    (None, {"model": "../../etc/passwd"}, 422, "unknown model"),
    (None, {"style_weights": "1,2,3"}, 422, "has 3 values for 1 style images"),
    (None, {"size": "5000"}, 422, "above the server's limit of 1024"),
    (None, {"alpha": "strong"}, 422, "alpha: Input should be a valid number"),
    (None, {"size": "big"}, 422, "size: Input should be a valid integer"),
], ids=["not-an-image", "decompression-bomb", "over-max-pixels", "huge-upload", "alpha",
        "model-path", "weights-count", "size", "alpha-type", "size-type"])
def test_api_refuses_bad_input_with_a_4xx_and_one_line(server, tmp_path, content_bytes, data,
                                                       status, message):
    content = CAT
    if content_bytes is not None:
        content = tmp_path / "content.png"
        content.write_bytes(content_bytes)
    response = post(server[0], [("content", content), ("style", STROKES)],
                    {"size": "64", "style_size": "64", **data})
    assert response.status_code == status, response.text
    assert list(response.json()) == ["error"]  # the documented shape, FastAPI's errors too
    error = response.json()["error"]
    assert message in error and "Traceback" not in response.text and "\n" not in error
    assert str(tmp_path) not in error  # no server folder in the message
    assert "--" not in error  # no advice about the server's command-line options


def test_api_answers_missing_fields_and_wrong_routes_in_one_json_line(server):
    import httpx

    base = server[0]
    missing = post(base, [("style", STROKES)])
    assert missing.status_code == 422 and missing.json() == {"error": "content: Field required"}
    wrong_method = httpx.get(f"{base}/api/stylize", timeout=10)
    assert wrong_method.status_code == 405
    assert wrong_method.json() == {"error": "/api/stylize takes POST, not GET"}
    nowhere = httpx.get(f"{base}/api/nowhere", timeout=10)
    assert nowhere.status_code == 404 and nowhere.json()["error"].startswith("no such API route")


def test_visitors_see_no_server_folders_nor_command_line_advice():
    from stylenorm.errors import ImageError, NonFiniteError
    from stylenorm.web.api import error_response
    from stylenorm.web.service import visitor_message

    tmp = Path("/tmp/stylenorm-web-x")
    limit = ImageError(f"{tmp}/sessions/ab/cat.png: image is 30x30 (900 pixels); the limit is "
                       "100 (raise it with --max-pixels)")
    assert visitor_message(limit, [tmp]) == "cat.png: image is 30x30 (900 pixels); this " \
                                            "server's limit is 100"
    overflow = NonFiniteError("cat.png: model '/home/me/.stylenorm/weights/odd.safetensors' "
                              "gave NaN or infinite values in fp32")
    response = error_response(overflow, [tmp])
    assert response.status_code == 422
    assert b"/home/me" not in response.body and b"'odd.safetensors'" in response.body


def test_api_mask_splits_two_styles(server, tmp_path):
    mask = Image.new("L", (451, 300), 0)
    mask.paste(255, (0, 0, 225, 300))  # the first style on the left half
    mask.save(tmp_path / "mask.png")
    files = [("content", CAT), ("style", STROKES), ("style", MOSAIC)]
    data = {"size": "64", "style_size": "64"}
    masked = np.asarray(png_of(post(server[0], [*files, ("mask", tmp_path / "mask.png")], data)))
    first = np.asarray(png_of(post(server[0], files[:2], data)))
    assert np.abs(masked[:, :40].astype(float) - first[:, :40]).mean() < np.abs(
        masked[:, 56:].astype(float) - first[:, 56:]).mean()  # the left half is the first's
    one_style = post(server[0], [*files[:2], ("mask", tmp_path / "mask.png")], data)
    assert one_style.status_code == 422
    assert one_style.json()["error"] == "mask needs exactly 2 style images; got 1"


def test_page_uploads_over_the_limit_are_refused(server):
    import httpx

    big = b"\0" * (2 * 2**20 + 1)
    response = httpx.post(f"{server[0]}/gradio_api/upload", files={"files": ("big.png", big)},
                          timeout=60)
    assert response.status_code == 413, response.text


def test_api_refuses_a_huge_request_before_reading_it(server):
    import httpx

    base, service, _ = server
    body = b"x" * (service.config.max_request_bytes() + 1)
    response = httpx.post(f"{base}/api/stylize", content=body, timeout=60,
                          headers={"content-type": "multipart/form-data; boundary=x"})
    assert response.status_code == 413 and "over the limit" in response.json()["error"]


def test_api_concurrent_requests_wait_their_turn_and_a_full_queue_answers_503(server):
    base, service, _ = server
    files = [("content", CAT), ("style", STROKES)]
    data = {"size": "48", "style_size": "48"}
    with ThreadPoolExecutor(3) as pool:  # 1 running + 2 waiting: all served
        responses = list(pool.map(lambda _: post(base, files, data), range(3)))
    assert [r.status_code for r in responses] == [200, 200, 200]

    release, held = threading.Event(), threading.Semaphore(0)

    def hold():
        with service.gate.slot():
            held.release()
            release.wait(10)

    holders = [threading.Thread(target=hold) for _ in range(3)]  # fill running + waiting
    for holder in holders:
        holder.start()
    held.acquire(timeout=5)
    time.sleep(0.2)
    try:
        busy = post(base, files, data)
    finally:
        release.set()
        for holder in holders:
            holder.join(10)
    assert busy.status_code == 503 and busy.headers["retry-after"] == "5"
    assert "busy" in busy.json()["error"]
    assert post(base, files, data).status_code == 200  # served again once the queue drains


# --------------------------------------------------------------------------- the page


@pytest.fixture(scope="module")
def browser():
    sync_api = pytest.importorskip("playwright.sync_api")
    if chromium_path() is None:
        pytest.skip("Chromium is not installed (apt-get install chromium)")
    from web_browser import launch

    with sync_api.sync_playwright() as playwright:
        browser = launch(playwright)
        yield browser
        browser.close()


def test_page_stylizes_uploads_and_keeps_a_gallery(server, browser, tmp_path):
    from web_browser import open_page, pick, set_size, stylise

    base, _, cache = server
    page = open_page(browser, base)
    url = stylise(page, CAT, [STROKES, MOSAIC], size=256)
    result = Image.open(io.BytesIO(page.request.get(url).body()))
    assert result.size == (384, 256)  # full resolution, whatever the page shows
    pixels = np.asarray(result.convert("RGB")).astype(float)
    assert pixels.std() > 10 and np.abs(pixels - np.asarray(Image.open(CAT).convert(
        "RGB").resize((384, 256))).astype(float)).mean() > 10  # stylised, not the content
    page.wait_for_selector("#gallery img", timeout=30_000)  # added after the result
    pick(page, "sample-styles", ["hubble.jpg", "ripples.png"])  # the shipped samples
    page.locator("#styles").filter(has_text="ripples").wait_for(timeout=30_000)
    set_size(page, 192)
    page.click("#run")
    page.wait_for_function("document.querySelector('#status').innerText.includes('288x192')",
                           timeout=30_000)
    page.wait_for_function("document.querySelectorAll('#gallery img').length == 2",
                           timeout=30_000)
    page.wait_for_timeout(500)  # let the thumbnails paint
    shot = tmp_path / "web_app.png"
    page.screenshot(path=str(shot), full_page=True)
    assert Image.open(shot).size[0] == 1400
    if os.environ.get("STYLENORM_UPDATE_SCREENSHOT"):
        shutil.copy(shot, REPO / "docs" / "web_app.png")

    def kept() -> list[str]:  # what is left with content (Gradio leaves empty temp files)
        return [p.name for p in cache.rglob("*") if p.is_file() and p.stat().st_size]

    assert {"cat.jpg", "strokes.png", "hubble.jpg", "cat-stylized-2.png"} <= set(kept())
    page.close()  # the page's uploads and results go when it is closed
    deadline = time.monotonic() + 20
    while kept() and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not kept(), f"uploads or results kept after the page was closed: {kept()}"


def test_page_shows_why_an_upload_is_refused(server, browser, tmp_path):
    from web_browser import open_page, upload

    bad = tmp_path / "holiday.jpg"
    bad.write_text("not an image at all")
    page = open_page(browser, server[0])
    upload(page, "content", [bad])
    status = page.locator("#status")
    status.filter(has_text="not a readable image").wait_for(timeout=30_000)
    assert "holiday.jpg: not a readable image" in status.inner_text()

    page.close()

    page = open_page(browser, server[0])  # a good content, a bad style: refused when run
    status = page.locator("#status")
    upload(page, "content", [CAT])
    page.wait_for_selector("#content-view img", timeout=30_000)
    upload(page, "styles", [bad])
    page.click("#run")
    status.filter(has_text="holiday.jpg: not a readable image").wait_for(timeout=30_000)
    assert "Traceback" not in page.content()
    page.close()


def test_page_paints_a_mask_over_the_content(server, browser):
    from web_browser import open_page, paint_stroke, set_size, upload

    base, _, cache = server
    page = open_page(browser, base)
    upload(page, "content", [CAT])
    page.wait_for_selector("#content-view img", timeout=30_000)
    upload(page, "styles", [STROKES, MOSAIC])
    page.click("text=Mask (two styles")
    page.wait_for_selector("#mask-paint canvas", timeout=30_000)
    paint_stroke(page, "mask-paint", left=0.25, width=0.1)
    set_size(page, 64)
    page.click("#run")
    page.wait_for_function("document.querySelector('#status').innerText.startsWith('Done')",
                           timeout=30_000)
    (mask_path,) = cache.glob("sessions/*/painted-mask.png")
    mask = np.asarray(Image.open(mask_path)) > 0
    assert mask.shape == (300, 451)  # the content's size: painted over it
    columns = np.flatnonzero(mask.any(axis=0))
    assert 0.1 < mask.mean() < 0.5 and columns.min() > 451 * 0.1 and columns.max() < 451 * 0.6
    page.close()


def test_page_says_when_the_server_is_busy(server, browser):
    from web_browser import open_page, set_size, upload

    base, service, _ = server
    page = open_page(browser, base)
    upload(page, "content", [CAT])
    upload(page, "styles", [STROKES])
    set_size(page, 64)
    release, held = threading.Event(), threading.Semaphore(0)

    def hold():
        with service.gate.slot():
            held.release()
            release.wait(20)

    holders = [threading.Thread(target=hold) for _ in range(3)]  # every place taken
    for holder in holders:
        holder.start()
    assert held.acquire(timeout=20)  # one runs; the others wait in the queue's places
    deadline = time.monotonic() + 20  # all of them admitted before the click, however busy
    while service.gate.admitted < len(holders) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert service.gate.admitted == len(holders)
    try:
        page.click("#run")
        page.locator("#status").filter(has_text="the server is busy").wait_for(timeout=30_000)
    finally:
        release.set()
        for holder in holders:
            holder.join(20)
    page.click("#run")  # served once the queue drains
    page.wait_for_function("document.querySelector('#status').innerText.startsWith('Done')",
                           timeout=30_000)
    page.close()


def test_style_uploads_are_shown_as_thumbnails():
    pytest.importorskip("gradio")
    from stylenorm.web.page import style_thumbnails

    shown = style_thumbnails([str(STROKES), str(MOSAIC)])
    assert shown["value"] == [str(STROKES), str(MOSAIC)] and shown["visible"]
    assert style_thumbnails(None)["visible"] is False
