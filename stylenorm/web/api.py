"""The HTTP API beside the page: ``POST /api/stylize`` takes a content, styles and options as
multipart form data and answers with the stylised PNG; errors are one JSON line with a 4xx or
503 status, never a traceback."""

from __future__ import annotations

import logging
import tempfile
from pathlib import Path

from fastapi import APIRouter, FastAPI, File, Form, Request, UploadFile
from fastapi.exception_handlers import http_exception_handler
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from starlette.exceptions import HTTPException

from ..errors import NonFiniteError, OptionError, StylenormError
from ..inference.stylize import StylizeOptions, parse_weights
from ..io.images import IMAGE_SUFFIXES
from .service import (
    ServeConfig,
    ServerBusy,
    StyleService,
    UploadTooLarge,
    WebRequest,
    visitor_message,
)

log = logging.getLogger("stylenorm.web")
CHUNK = 2**20
ROUTES = {"models": "GET", "stylize": "POST"}
RETRY_AFTER_S = 5


def error_response(exc: BaseException, folders: list[Path]) -> JSONResponse:
    """The status and one-line message a failed request gets."""
    if isinstance(exc, ServerBusy):
        return JSONResponse({"error": str(exc)}, 503, {"Retry-After": str(RETRY_AFTER_S)})
    if isinstance(exc, UploadTooLarge):
        status = 413
    elif isinstance(exc, (OptionError, NonFiniteError)):
        status = 422
    elif isinstance(exc, StylenormError):
        status = 400
    elif isinstance(exc, MemoryError) or "out of memory" in str(exc):
        return JSONResponse({"error": "out of memory; try a smaller size"}, 503)
    else:
        log.exception("request failed")
        return JSONResponse({"error": f"internal error: {type(exc).__name__}"}, 500)
    return JSONResponse({"error": visitor_message(exc, folders)}, status)


def save_upload(upload: UploadFile, folder: Path, stem: str, limit: int) -> Path:
    """Copy an upload into ``folder`` as ``stem`` plus its image suffix, refusing it once it
    passes ``limit`` bytes."""
    suffix = Path(upload.filename or "").suffix.lower()
    name = stem + (suffix if suffix in IMAGE_SUFFIXES else "")
    path, written = folder / name, 0
    with path.open("wb") as out:
        while chunk := upload.file.read(CHUNK):
            written += len(chunk)
            if written > limit:
                raise UploadTooLarge(f"{upload.filename or stem}: upload is over the limit of "
                                     f"{limit / 2**20:.0f} MiB")
            out.write(chunk)
    return path


def api_router(service: StyleService) -> APIRouter:
    """The routes ``/api/stylize`` and ``/api/models`` over ``service``."""
    router = APIRouter(prefix="/api")
    config = service.config

    @router.get("/models")
    def models() -> dict:
        return {"models": service.choices(), "default": config.model}

    @router.post("/stylize", response_class=Response,
                 responses={200: {"content": {"image/png": {}}}})
    def stylize(
        content: UploadFile = File(..., description="The content image."),
        style: list[UploadFile] = File(..., description="One or more style images."),
        mask: UploadFile | None = File(None, description="Two styles: 1 where white."),
        alpha: float = Form(1.0),
        style_weights: str | None = Form(None, description="e.g. 0.7,0.3"),
        preserve_color: bool = Form(False),
        size: int = Form(512, description="Output shorter side in px; 0 keeps it."),
        style_size: int = Form(512),
        model: str = Form(config.model),
    ) -> Response:
        with tempfile.TemporaryDirectory(prefix="stylenorm-api-") as tmp:
            folder = Path(tmp)
            try:
                request = WebRequest(
                    content=save_upload(content, folder, "content", config.max_upload_bytes),
                    styles=[save_upload(s, folder, f"style-{i}", config.max_upload_bytes)
                            for i, s in enumerate(style, 1)],
                    mask=save_upload(mask, folder, "mask", config.max_upload_bytes)
                    if mask is not None else None,
                    model=model,
                    options=StylizeOptions(alpha=alpha, style_weights=parse_weights(
                        style_weights), preserve_color=preserve_color, size=size,
                        style_size=style_size))
                output = service.stylize(request, folder / "stylized.png")
                return Response(output.read_bytes(), media_type="image/png", headers={
                    "Content-Disposition": 'attachment; filename="stylized.png"'})
            except Exception as exc:  # every failure becomes one JSON line
                return error_response(exc, [folder])

    @router.api_route("/{rest:path}", methods=["GET", "POST", "PUT", "DELETE", "PATCH"],
                      include_in_schema=False)
    def unknown(rest: str, request: Request) -> JSONResponse:
        if rest in ROUTES:
            return JSONResponse({"error": f"/api/{rest} takes {ROUTES[rest]}, not "
                                 f"{request.method}"}, 405, {"Allow": ROUTES[rest]})
        return JSONResponse({"error": f"no such API route /api/{rest}; the routes are GET "
                             "/api/models and POST /api/stylize"}, 404)

    return router


def validation_message(exc: RequestValidationError) -> str:
    """FastAPI's list of field errors as one line: ``alpha: Input should be a valid number,
    unable to parse string as a number; got 'abc'``."""
    parts = []
    for error in exc.errors():
        where = [str(p) for p in error.get("loc", ()) if p not in ("body", "query", "header")]
        got = error.get("input")
        shown = f"; got {got!r}" if isinstance(got, (str, int, float)) and len(str(got)) < 40 \
            else ""
        parts.append(f"{'.'.join(where) or 'request'}: {error.get('msg', 'invalid')}{shown}")
    return " ".join("; ".join(parts).split())


def add_error_handlers(app: FastAPI) -> None:
    """Every error of an ``/api/`` request as ``{"error": "one line"}`` (FastAPI's own answer to
    a missing or mistyped field is ``{"detail": [...]}``)."""

    @app.exception_handler(RequestValidationError)
    async def invalid_request(request: Request, exc: RequestValidationError) -> JSONResponse:
        return JSONResponse({"error": validation_message(exc)}, 422)

    @app.exception_handler(HTTPException)
    async def http_error(request: Request, exc: HTTPException):
        if not request.url.path.startswith("/api/"):
            return await http_exception_handler(request, exc)
        return JSONResponse({"error": str(exc.detail)}, exc.status_code, exc.headers)


async def refuse_huge_requests(request: Request, call_next, config: ServeConfig):
    """Answer 413 to an API request that declares a body over the limit, before reading it."""
    declared = request.headers.get("content-length", "")
    if (request.url.path.startswith("/api/") and declared.isdigit()
            and int(declared) > config.max_request_bytes()):
        return JSONResponse({"error": f"request body of {int(declared) / 2**20:.0f} MiB is over "
                             f"the limit of {config.max_request_bytes() / 2**20:.0f} MiB"}, 413)
    return await call_next(request)
