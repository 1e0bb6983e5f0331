"""OpenAI Images wire shapes of the facade: request and response models, and error bodies.

Followed: https://platform.openai.com/docs/api-reference/images (create image: JSON body
``model, prompt, n, size, response_format, quality, style, background, output_format,
output_compression, moderation, user``; create image edit: multipart with ``image`` or
``image[]``, ``mask``, ``prompt``, ``model``, ``n``, ``size``, ``response_format``,
``background``; the answer ``{"created", "data": [{"b64_json", "revised_prompt"}], "size",
"output_format", "usage"}``), https://platform.openai.com/docs/api-reference/models/list
(``{"object": "list", "data": [{"id", "object": "model", "created", "owned_by"}]}``) and the
error object of https://platform.openai.com/docs/guides/error-codes (``{"error": {"message",
"type", "param", "code"}}``), as the openai-python SDK types read them
(``types/images_response.py``, ``types/model.py``, ``_exceptions.py``).

Every error of a facade route, including authentication and validation errors raised before
the endpoint runs, is answered in OpenAI's shape by :class:`OpenAIRoute`, so OpenAI clients
(and Open WebUI, which reads ``error.message``) show the studio's message.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Coroutine
from typing import Any, Literal

from fastapi import Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi.routing import APIRoute
from pydantic import BaseModel, ConfigDict, Field
from starlette.exceptions import HTTPException as StarletteHTTPException

from ...errors import ContentRejected, ImageStudioError, ProviderTimeout
from ...types import MAX_N

OWNED_BY = "image-studio"
JOB_HEADER = "X-Image-Studio-Job-Id"
"""Response header with the id of the job a generation or edit ran as (also on errors)."""


class ImagesGenerateIn(BaseModel):
    """``POST /images/generations`` body: OpenAI's fields, plus any other field (Open WebUI
    merges ``IMAGES_OPENAI_PARAMS`` into the body): the studio's own GenerationRequest fields
    (``negative_prompt``, ``steps``, ``cfg_scale``, ``sampler``, ``scheduler``, ``seed``,
    ``provider``, ``workflow``, ``loras``, ``params``, ``extra``, ``width``, ``height`` ...)
    are read as such; any other name goes into the request's ``extra``."""

    model_config = ConfigDict(extra="allow")

    prompt: str = Field(max_length=10_000, description="what to draw")
    model: str | None = Field(None, description="a facade model name: mapped, a provider id, a workflow "
                                                "name, or anything else for the default mapping")
    n: int | None = Field(None, ge=1, le=MAX_N, description="images to make (default 1)")
    size: str | None = Field(None, description="WIDTHxHEIGHT in pixels, or auto")
    response_format: Literal["b64_json", "url"] | None = Field(
        None, description="always answered as b64_json (url is accepted and answered as b64_json)")
    quality: str | None = None
    style: str | None = None
    background: str | None = None
    output_format: str | None = None
    output_compression: int | None = Field(None, ge=0, le=100)
    moderation: str | None = None
    user: str | None = Field(None, max_length=256)
    stream: bool | None = Field(None, description="streamed answers are not served: true is refused")


class ImageData(BaseModel):
    """One image: the stored file's bytes in base64, and the provider's revised prompt if any."""

    b64_json: str
    revised_prompt: str | None = None


class ImagesResponse(BaseModel):
    """The answer of generations and edits. ``created`` is Unix seconds; ``size`` (``WxH``
    pixels) and ``output_format`` are set when every image shares them."""

    created: int
    data: list[ImageData]
    size: str | None = None
    output_format: str | None = None


class ModelObject(BaseModel):
    id: str
    object: Literal["model"] = "model"
    created: int
    owned_by: str = OWNED_BY


class ModelList(BaseModel):
    object: Literal["list"] = "list"
    data: list[ModelObject]


class OpenAIErrorBody(BaseModel):
    """``{"error": {"message", "type", "param", "code"}}``."""

    error: dict[str, Any]


ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    status: {"model": OpenAIErrorBody} for status in (401, 404, 409, 422, 429, 502, 503, 504)
}


def _error_type(status: int) -> str:
    if status == 401:
        return "authentication_error"
    if status == 403:
        return "permission_error"
    if status == 429:
        return "rate_limit_error"
    return "invalid_request_error" if status < 500 else "server_error"


def _snake(name: str) -> str:
    return re.sub(r"(?<!^)(?=[A-Z])", "_", name).lower()


def openai_error(status: int, message: str, *, param: str | None = None, code: str | None = None,
                 headers: dict[str, str] | None = None) -> JSONResponse:
    """A JSON response ``{"error": {"message", "type", "param", "code"}}`` with ``status``;
    ``type`` follows OpenAI's names (``invalid_request_error``, ``authentication_error``,
    ``permission_error``, ``rate_limit_error``, ``server_error``)."""
    body = {"error": {"message": message, "type": _error_type(status), "param": param, "code": code}}
    return JSONResponse(body, status_code=status, headers=headers)


def studio_error(exc: ImageStudioError, *, headers: dict[str, str] | None = None) -> JSONResponse:
    """The OpenAI error for a studio error: its class's status, ``param`` its ``field``,
    ``code`` its class name in snake case, except ``content_policy_violation`` for a refusal
    (OpenAI's code) and ``timeout`` for a provider timeout."""
    code = _snake(type(exc).__name__)
    if isinstance(exc, ContentRejected):
        code = "content_policy_violation"
    elif isinstance(exc, ProviderTimeout):
        code = "timeout"
    return openai_error(exc.http_status, exc.message, param=exc.field, code=code, headers=headers)


def _param_of(loc: tuple[Any, ...]) -> str | None:
    parts = [str(p) for p in loc if p not in ("body", "header", "query", "form")]
    return ".".join(parts) or None


def validation_error(exc: RequestValidationError) -> JSONResponse:
    """422 naming the first field at fault as ``param`` (``image[]`` for that form field)."""
    errors = exc.errors()
    first = errors[0] if errors else {"loc": (), "msg": "invalid request"}
    param = _param_of(tuple(first.get("loc", ())))
    message = f"{param}: {first.get('msg')}" if param else str(first.get("msg"))
    return openai_error(422, message, param=param, code="invalid_value")


def http_error(exc: StarletteHTTPException) -> JSONResponse:
    """An HTTPException (401 from the key check, 422 from a forwarded header) in OpenAI's shape."""
    detail = exc.detail if isinstance(exc.detail, dict) else {"message": str(exc.detail)}
    code = _snake(str(detail.get("type", "http_error")))
    return openai_error(exc.status_code, str(detail.get("message", "")), param=detail.get("field"), code=code,
                        headers=dict(exc.headers or {}))


class OpenAIRoute(APIRoute):
    """A route whose errors come out in OpenAI's shape, wherever they are raised (dependencies
    such as authentication, body validation, the endpoint), inside Open WebUI too, where the
    app's own exception handlers are not the studio's."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def run(request: Request) -> Response:
            try:
                return await handler(request)
            except RequestValidationError as exc:
                return validation_error(exc)
            except StarletteHTTPException as exc:
                return http_error(exc)
            except ImageStudioError as exc:
                return studio_error(exc)

        return run
