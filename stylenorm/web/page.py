"""The Gradio page: drop a content photo and style images (or pick samples), set the options,
see the result beside the content, download it, and keep a gallery of this page's results."""

from __future__ import annotations

from pathlib import Path

import gradio as gr
import numpy as np
from PIL import Image

from ..errors import StylenormError
from ..inference.stylize import StylizeOptions, parse_weights
from ..io.images import IMAGE_SUFFIXES, image_size
from .service import ServerBusy, StyleService, WebRequest, visitor_message
from .sessions import SessionFiles

INTRO = ("Drop a content photo and one or more style images (or pick samples), then press "
         "**Stylise**. Nothing you upload is kept once this page is closed.")


def sample_names(folder: Path | None) -> list[str]:
    if folder is None or not folder.is_dir():
        return []
    return sorted(p.name for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)


def error_line(exc: BaseException, files: SessionFiles) -> str:
    """One line for the page: no traceback, no server folders."""
    if isinstance(exc, (StylenormError, ServerBusy)):
        return visitor_message(exc, [files.root])
    if isinstance(exc, MemoryError) or "out of memory" in str(exc):
        return "out of memory; try a smaller output size"
    return f"internal error ({type(exc).__name__}); see the server's log"


def style_thumbnails(files: list[str] | None):
    """The style uploads as pictures (their file names alone are cut off in the file list)."""
    paths = [str(f) for f in files or []]
    return gr.update(value=paths or None, visible=bool(paths))


def painted_mask(editor: dict | None, folder: Path) -> Path | None:
    """The strokes painted over the content as a black-and-white mask file (white where
    painted), or None when nothing was painted."""
    layers = [layer for layer in (editor or {}).get("layers") or [] if layer is not None]
    painted = None
    for layer in layers:
        alpha = np.asarray(layer.convert("RGBA"))[..., 3] > 0
        painted = alpha if painted is None else painted | alpha
    if painted is None or not painted.any():
        return None
    path = folder / "painted-mask.png"
    Image.fromarray(painted.astype(np.uint8) * 255).save(path)
    return path


class Page:
    """The page's event handlers over a :class:`StyleService`."""

    def __init__(self, service: StyleService, files: SessionFiles) -> None:
        self.service, self.files = service, files
        self.samples = service.config.samples

    def sample_path(self, kind: str, name: str) -> str:
        return str(self.samples / kind / name)

    def show_content(self, content: str | None, request: gr.Request):
        """The content beside the result and under the mask brush, or why it is refused."""
        if not content:
            return None, None, ""
        self.files.add(request.session_hash, [content])
        try:
            image_size(content, self.service.config.max_pixels)
        except StylenormError as exc:
            return None, None, f"**Error:** {error_line(exc, self.files)}"
        return content, {"background": content, "layers": [], "composite": None}, ""

    def run(self, content, styles, mask_file, mask_paint, model, alpha, weights, preserve,
            size, request: gr.Request, progress=gr.Progress()):
        """Stylise; returns the result file and the status line."""
        session = request.session_hash
        self.files.add(session, [content, mask_file, *(styles or [])])
        folder = self.files.folder(session)
        if not content or not styles:
            return gr.skip(), "**Error:** drop a content photo and at least one style image"
        progress(0.0, desc="waiting for the model")
        try:
            mask = mask_file or painted_mask(mask_paint, folder)
            options = StylizeOptions(alpha=float(alpha), preserve_color=bool(preserve),
                                     style_weights=parse_weights(weights), size=int(size))
            job = WebRequest(Path(content), [Path(s) for s in styles], model,
                             Path(mask) if mask else None, options)
            count = len(list(folder.glob("*-stylized-*.png"))) + 1
            output = folder / f"{Path(content).stem}-stylized-{count}.png"
            self.service.stylize(job, output, on_tile=lambda done, total: progress(
                (done, total), desc="stylising tiles", unit="tiles"))
        except Exception as exc:  # every failure is one line on the page
            message = error_line(exc, self.files)
            gr.Warning(message)
            return gr.skip(), f"**Error:** {message}"
        width, height = Image.open(output).size
        return str(output), f"Done: {width}x{height} px."

    def remember(self, result: str | None, gallery: list, request: gr.Request):
        """Add the newest result (its cached copy) to this page's gallery."""
        if not result or (gallery and gallery[-1] == result):
            return gallery, gallery
        self.files.add(request.session_hash, [result])
        gallery = [*gallery, result]
        return gallery, gallery

    def close(self, request: gr.Request) -> None:
        self.files.close(request.session_hash)


def input_column(page: Page, config) -> dict:
    """The inputs: files or samples, options, the mask."""
    contents = sample_names(page.samples and page.samples / "content")
    styles = sample_names(page.samples and page.samples / "style")
    ui = {}
    ui["content"] = gr.File(label="Content photo", elem_id="content")
    ui["sample_content"] = gr.Dropdown(contents, value=None, label="...or a sample content",
                                       visible=bool(contents), elem_id="sample-content")
    ui["styles"] = gr.File(label="Style images", file_count="multiple", elem_id="styles")
    ui["style_thumbs"] = gr.Gallery(label="Styles", columns=4, height=140, preview=False,
                                    object_fit="cover", interactive=False, visible=False,
                                    elem_id="style-thumbs")
    ui["sample_styles"] = gr.Dropdown(styles, value=[], multiselect=True,
                                      label="...or sample styles", visible=bool(styles),
                                      elem_id="sample-styles")
    with gr.Accordion("Options", open=True):
        choices = page.service.choices()
        ui["model"] = gr.Dropdown(choices, value=config.model, label="Model", elem_id="model")
        ui["alpha"] = gr.Slider(0, 1, value=1.0, step=0.05, label="Style strength (alpha)")
        ui["weights"] = gr.Textbox(label="Style weights", placeholder="e.g. 0.7,0.3 for two "
                                   "styles (blank: equal)")
        ui["preserve"] = gr.Checkbox(label="Preserve the content's colours")
        ui["size"] = gr.Slider(0, config.max_size, value=512, step=16, elem_id="size",
                               label="Output size: shorter side in px (0 keeps the original)")
    with gr.Accordion("Mask (two styles: the first where white)", open=False):
        ui["mask_file"] = gr.File(label="Mask image", elem_id="mask")
        ui["mask_paint"] = gr.ImageEditor(
            label="...or paint the first style's region over the content", type="pil",
            elem_id="mask-paint",
            sources=[], layers=False, brush=gr.Brush(colors=["#ffffff"], color_mode="fixed"))
    ui["run"] = gr.Button("Stylise", variant="primary", elem_id="run")
    ui["status"] = gr.Markdown(elem_id="status")
    return ui


def build_page(service: StyleService, files: SessionFiles) -> gr.Blocks:
    page = Page(service, files)
    config = service.config
    with gr.Blocks(title="stylenorm", analytics_enabled=False,
                   delete_cache=(60, config.cache_max_age_s)) as demo:
        gr.Markdown("## stylenorm: neural style transfer\n" + INTRO)
        gallery_state = gr.State([])
        with gr.Row():
            with gr.Column(scale=1, min_width=320):
                ui = input_column(page, config)
            with gr.Column(scale=2):
                with gr.Row():
                    shown = gr.Image(label="Content", interactive=False, elem_id="content-view",
                                     height=380, buttons=["fullscreen"])
                    result = gr.Image(label="Result (full resolution)", type="filepath",
                                      format="png", interactive=False, elem_id="result",
                                      height=380, buttons=["download", "fullscreen"])
                gallery = gr.Gallery(label="Made since this page was opened", columns=5,
                                     elem_id="gallery", format="png", preview=False,
                                     height=240, object_fit="contain", fit_columns=False)
        ui["sample_content"].change(lambda n: page.sample_path("content", n) if n else None,
                                    ui["sample_content"], ui["content"])
        ui["sample_styles"].change(lambda ns: [page.sample_path("style", n) for n in ns] or None,
                                   ui["sample_styles"], ui["styles"])
        ui["styles"].change(style_thumbnails, ui["styles"], ui["style_thumbs"])
        ui["content"].change(page.show_content, ui["content"],
                             [shown, ui["mask_paint"], ui["status"]])
        names = ["content", "styles", "mask_file", "mask_paint", "model", "alpha", "weights",
                 "preserve", "size"]
        ui["run"].click(page.run, [ui[n] for n in names], [result, ui["status"]],
                        concurrency_limit=1).then(
            page.remember, [result, gallery_state], [gallery, gallery_state])
        demo.unload(page.close)
    return demo
