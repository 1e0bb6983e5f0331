"""The facade's routes: ``POST /openai/v1/images/generations``, ``POST /openai/v1/images/edits``,
``GET /openai/v1/models`` and ``GET /openai/v1/models/{model}`` (under the studio's prefix).

Each generation or edit is one studio job (``Studio.submit``, the queue, the fallback chain):
the route waits for it up to ``IMAGE_STUDIO_WAIT_MAX`` seconds and answers with the stored
assets' bytes in base64. A job still running then is answered 504 (code ``timeout``) and runs
on: it appears in ``GET /jobs`` and its images in the gallery. Every answer about a job carries
its id in the ``X-Image-Studio-Job-Id`` header.

Generations and edits pass the host's permission gate first (:func:`facade_generation_allowed`):
inside Open WebUI that is Open WebUI's image switch and ``features.image_generation`` permission,
checked for the *acting* caller (the forwarded user of a service key); standalone there is none.
"""

from __future__ import annotations

import time
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, File, Form, Header, Request, UploadFile
from fastapi.responses import JSONResponse

from ...errors import InvalidRequest, NotFound, error_from_dict
from ...studio import Studio
from ...types import MAX_N, Asset, GenerationRequest, Job, JobStatus
from ..deps import ActingPrincipalDep, Principal, StudioDep
from .mapping import model_names, resolve
from .translate import b64, build_request, form_fields, image_dimensions, size_error, studio_mask, with_chat_context
from .wire import (ERROR_RESPONSES, JOB_HEADER, ImageData, ImagesGenerateIn, ImagesResponse, ModelList, ModelObject,
                   OpenAIRoute, openai_error, studio_error)

router = APIRouter(prefix="/openai/v1", tags=["openai"], route_class=OpenAIRoute)

MAX_UPLOAD_BYTES = 50 * 1024 * 1024
"""Largest uploaded image or mask, bytes (OpenAI's limit for GPT image edits)."""
FILE_FIELDS = ("image", "image[]", "mask")
MODELS_CREATED = int(time.time())
"""``created`` of every listed model (Unix seconds): when this process loaded the facade."""


async def _read_asset(studio: Studio, asset: Asset) -> bytes:
    stream = await studio.assets.open(asset)
    return b"".join([chunk async for chunk in stream])


async def _answer(studio: Studio, job: Job) -> ImagesResponse:
    """The ImagesResponse of a succeeded job, from the stored files (asset store)."""
    assets = [await studio.store.get_asset(asset_id) for asset_id in job.asset_ids]
    data = [ImageData(b64_json=b64(await _read_asset(studio, a)), revised_prompt=a.parameters.get("revised_prompt"))
            for a in assets]
    sizes = {f"{a.width}x{a.height}" for a in assets if a.width and a.height}
    formats = {a.mime_type.partition("/")[2] for a in assets}
    return ImagesResponse(created=int((job.finished_at or job.created_at).timestamp()), data=data,
                          size=sizes.pop() if len(sizes) == 1 and len(assets) == len(data) else None,
                          output_format=formats.pop() if len(formats) == 1 else None)


def _failure(job: Job, headers: dict[str, str]) -> JSONResponse:
    """The OpenAI error for a job that ended without images (its stored error's status)."""
    if job.status is JobStatus.expired:
        message = (job.error or {}).get("message", "the job expired in the queue")
        return openai_error(504, message, code="expired", headers=headers)
    error = error_from_dict(job.error or {"type": "ImageStudioError", "message": f"the job ended {job.status.value}"})
    return studio_error(error, headers=headers)


async def run_job(studio: Studio, principal: Principal, request: GenerationRequest,
                  idempotency_key: str | None) -> ImagesResponse | JSONResponse:
    """Submit ``request`` as ``principal``'s job, wait up to ``settings.wait_max`` seconds, answer.

    Raises:
        ConfigError: no provider (503). NotFound: an unknown provider (404). Conflict: the
            Idempotency-Key was used with another body (409).
    """
    job = await studio.submit(request, owner=principal.owner, idempotency_key=idempotency_key)
    headers = {JOB_HEADER: job.id}
    job = await studio.wait(job.id, studio.settings.wait_max)
    if not job.done:
        return openai_error(
            504, f"job {job.id} is still {job.status.value} after {studio.settings.wait_max:g} s; it keeps running "
                 "and its images will be in the studio's gallery", code="timeout", headers=headers)
    if job.status is not JobStatus.succeeded:
        return _failure(job, headers)
    answer = await _answer(studio, job)
    return JSONResponse(answer.model_dump(mode="json", exclude_none=True), headers=headers)


async def facade_generation_allowed(request: Request, principal: ActingPrincipalDep) -> None:
    """The host's gate (``app.state.generation_gate``, installed inside Open WebUI by
    :func:`image_studio.openwebui.auth.generation_gate`) for the acting principal: the user
    Open WebUI forwards (``X-OpenWebUI-User-Id``) when a service key sends one, else the
    caller itself. Standalone no gate is installed and nothing is checked.

    Raises:
        PermissionDenied: (403) from the gate: image generation off in Open WebUI (field
            ``image_generation.enable``) or the acting user lacks ``features.image_generation``.
    """
    gate = getattr(request.app.state, "generation_gate", None)
    if gate is not None:
        await gate(request, principal)


@router.post("/images/generations", response_model=ImagesResponse, response_model_exclude_none=True,
             responses=ERROR_RESPONSES, dependencies=[Depends(facade_generation_allowed)])
async def create_images(
    body: ImagesGenerateIn, studio: StudioDep, principal: ActingPrincipalDep, http: Request,
    idempotency_key: Annotated[str | None, Header(max_length=200)] = None,
) -> ImagesResponse | JSONResponse:
    """OpenAI's create image, run as a studio job. ``model`` picks the route (see the docs);
    studio fields in the body (``steps``, ``negative_prompt`` ...) are honoured; the answer
    is always ``b64_json``."""
    resolved = await resolve(studio, body.model)
    fields = body.model_dump(exclude_unset=True)
    request = build_request(fields, resolved.route)
    request = with_chat_context(request, http.headers, studio.host_extra_keys)
    try:
        return await run_job(studio, principal, request, idempotency_key)
    except InvalidRequest as exc:
        raise size_error(exc, fields) from None


async def _read_upload(upload: UploadFile, field: str) -> bytes:
    data = await upload.read(MAX_UPLOAD_BYTES + 1)
    if len(data) > MAX_UPLOAD_BYTES:
        raise InvalidRequest(f"{field} is over {MAX_UPLOAD_BYTES} bytes", field=field)
    if not data:
        raise InvalidRequest(f"{field} is empty", field=field)
    return data


async def edit_inputs(images: list[UploadFile], mask: UploadFile | None) -> dict[str, object]:
    """Request fields from an edit's files: ``init_image`` (the first image), ``mask`` (in the
    studio's convention), ``extra.reference_images`` (the other images, base64), and the
    first image's size (pixels) as ``_size``.

    Raises:
        InvalidRequest: no image, an empty, oversized or undecodable file (field ``image``,
            ``image[].<i>`` or ``mask``).
    """
    if not images:
        raise InvalidRequest("an edit needs an image (form field image or image[])", field="image")
    raw = [await _read_upload(u, "image" if i == 0 else f"image[].{i}") for i, u in enumerate(images)]
    size = image_dimensions(raw[0], "image")
    for i, data in enumerate(raw[1:], start=1):
        image_dimensions(data, f"image[].{i}")
    out: dict[str, object] = {"init_image": raw[0], "_size": size}
    if len(raw) > 1:
        out["reference_images"] = [b64(d) for d in raw[1:]]
    if mask is not None:
        out["mask"] = studio_mask(await _read_upload(mask, "mask"))
    return out


@router.post("/images/edits", response_model=ImagesResponse, response_model_exclude_none=True,
             responses=ERROR_RESPONSES, dependencies=[Depends(facade_generation_allowed)])
async def edit_images(
    request: Request, studio: StudioDep, principal: ActingPrincipalDep,
    prompt: Annotated[str, Form(max_length=10_000)],
    image: Annotated[list[UploadFile] | None, File(description="the image to edit (one)")] = None,
    images: Annotated[list[UploadFile] | None, File(alias="image[]", description="images: the first is edited, "
                                                                                  "the others are references")] = None,
    mask: Annotated[UploadFile | None, File(description="transparent (alpha 0) where to paint")] = None,
    model: Annotated[str | None, Form()] = None,
    n: Annotated[int | None, Form(ge=1, le=MAX_N)] = None,
    size: Annotated[str | None, Form()] = None,
    response_format: Annotated[Literal["b64_json", "url"] | None, Form()] = None,
    background: Annotated[str | None, Form()] = None,
    idempotency_key: Annotated[str | None, Header(max_length=200)] = None,
) -> ImagesResponse | JSONResponse:
    """OpenAI's create image edit (multipart), run as a studio job: img2img, or inpaint with a
    mask. Other form fields are read like the generations body (JSON text for ``params``,
    ``extra``, ``loras``, ``hires``, ``upscale``)."""
    inputs = await edit_inputs([*(image or []), *(images or [])], mask)
    form = await request.form()
    body = form_fields({k: v for k, v in form.multi_items() if k not in FILE_FIELDS and isinstance(v, str)})
    refs = inputs.pop("reference_images", None)
    if refs is not None:
        extra = body.get("extra") if isinstance(body.get("extra"), dict) else {}
        body["extra"] = {**extra, "reference_images": refs}
    image_size = inputs.pop("_size")
    resolved = await resolve(studio, model)
    gen = build_request({**body, **inputs}, resolved.route, image_size=image_size)  # type: ignore[arg-type]
    gen = with_chat_context(gen, request.headers, studio.host_extra_keys)
    try:
        return await run_job(studio, principal, gen, idempotency_key)
    except InvalidRequest as exc:
        raise size_error(exc, {**body, "size": size}) from None


@router.get("/models", response_model=ModelList, responses=ERROR_RESPONSES)
async def list_models(studio: StudioDep, principal: ActingPrincipalDep) -> ModelList:
    """The facade's model names: mapped names, enabled provider ids, workflow templates
    (shipped, then saved)."""
    return ModelList(data=[ModelObject(id=name, created=MODELS_CREATED) for name in await model_names(studio)])


@router.get("/models/{model}", response_model=ModelObject, responses=ERROR_RESPONSES)
async def get_model(model: str, studio: StudioDep, principal: ActingPrincipalDep) -> ModelObject:
    """One listed model name.

    Raises:
        NotFound: a name the listing does not hold (field ``model``).
    """
    if model not in await model_names(studio):
        raise NotFound(f"no model {model!r} (GET /models lists them; any other name runs the default route)",
                       field="model")
    return ModelObject(id=model, created=MODELS_CREATED)


__all__ = ["facade_generation_allowed", "router", "run_job"]
