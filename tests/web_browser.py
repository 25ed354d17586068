"""Drives the ``stylenorm serve`` page in the system's headless Chromium through Playwright:
shared by tests/test_web.py and the README's screenshot (docs/web_app.png)."""

from __future__ import annotations

import shutil
from pathlib import Path

CHROMIUM = "/usr/bin/chromium"
# Without the background-networking flags Chromium's own connections are refused on a closed
# network and the page's are refused with them.
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
                 "--no-first-run", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync"]
TIMEOUT_MS = 60_000


def chromium_path() -> str | None:
    """The system Chromium, or None where it is not installed."""
    if Path(CHROMIUM).is_file():
        return CHROMIUM
    return shutil.which("chromium")


def launch(playwright):
    return playwright.chromium.launch(executable_path=chromium_path(), args=CHROMIUM_ARGS)


def open_page(browser, url: str):
    """A page at ``url`` once the app has drawn its button."""
    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    page.goto(url, wait_until="domcontentloaded")
    page.wait_for_selector("#run", timeout=TIMEOUT_MS)
    return page


def upload(page, elem_id: str, files: list[Path]) -> None:
    page.locator(f"#{elem_id} input[type=file]").set_input_files([str(f) for f in files])


def set_size(page, size: int) -> None:
    box = page.locator("#size input[type=number]")
    box.fill(str(size))
    box.press("Enter")


def stylise(page, content: Path, styles: list[Path], size: int) -> str:
    """Upload, press Stylise, wait for the result; returns the result image's URL."""
    upload(page, "content", [content])
    page.wait_for_selector("#content-view img", timeout=TIMEOUT_MS)
    upload(page, "styles", styles)
    set_size(page, size)
    page.click("#run")
    page.wait_for_function("document.querySelector('#status').innerText.startsWith('Done')",
                           timeout=TIMEOUT_MS)
    return page.locator("#result img").get_attribute("src")


def pick(page, elem_id: str, names: list[str]) -> None:
    """Choose ``names`` in the dropdown ``elem_id`` (the sample pickers)."""
    for name in names:
        page.click(f"#{elem_id} input")
        page.click(f"li:has-text('{name}')")
    page.keyboard.press("Escape")


def paint_stroke(page, elem_id: str, left: float, width: float) -> None:
    """Paint a vertical band over ``left .. left + width`` (fractions of the canvas's width)
    of the image editor ``elem_id``."""
    page.locator(f"#{elem_id} button[aria-label='Brush']").first.click()
    box = page.locator(f"#{elem_id} canvas").first.bounding_box()
    x, y = box["x"] + box["width"] * left, box["y"] + box["height"] * 0.3
    page.mouse.move(x, y)
    page.mouse.down()
    for i in range(8):  # a zigzag down the band (each move repaints the canvas: few of them)
        page.mouse.move(x + (i % 2) * box["width"] * width, y + i * box["height"] * 0.05)
    page.mouse.up()
