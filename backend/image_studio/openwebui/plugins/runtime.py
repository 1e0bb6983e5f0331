"""Run a studio generation from inside an Open WebUI chat plugin (the Tool, the Pipe, the Action).

The plugins are thin: Open WebUI loads their source from its database and calls them in its
own process, where the studio is mounted (``request.app.state.studio``, set by
:func:`image_studio.openwebui.mount.mount`). :func:`run_in_chat` does the work they share:

1. finds the studio and the Open WebUI user behind ``__user__``;
2. asks ``app.state.generation_gate`` (Open WebUI's image switch and
   ``features.image_generation`` permission, :func:`image_studio.openwebui.auth.generation_gate`);
3. submits the job as that user (owner = the Open WebUI user id);
4. follows it with ``studio.events(job_id)``, turning studio events into Open WebUI
   ``status`` events (``{"type": "status", "data": {"description", "done"}}``, the shape
   ``open_webui/socket/main.py`` ``get_event_emitter`` stores in the message's status history);
5. on success puts every asset into the chat as an Open WebUI file (:mod:`.owui_files`);
6. returns a short text for the model.

If the chat is stopped while the job runs (Open WebUI cancels its chat task, so the plugin
sees :class:`asyncio.CancelledError`), the studio job is canceled too.
"""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from ...errors import ConfigError, ImageStudioError, InvalidRequest
from ...types import GenerationRequest, Job, JobStatus, MediaKind, ProgressEvent

log = logging.getLogger("image_studio.openwebui")

Emitter = Callable[[dict[str, Any]], Awaitable[Any]]

PROGRESS_STEP = 0.1
"""Smallest change of a job's progress (0..1) worth a new status line: Open WebUI stores every
status event in the chat message, so one per percent would bloat it."""

CANCEL_TIMEOUT = 15.0
"""Seconds given to ``studio.cancel`` after the chat was stopped."""


@dataclass
class ChatCall:
    """What Open WebUI hands a plugin, as the shared runner needs it.

    Attributes:
        request: ``__request__``, the chat completion's Starlette ``Request`` (its ``app`` is
            Open WebUI's app, with the studio mounted).
        user: ``__user__``: Open WebUI's ``UserModel.model_dump()`` (``id``, ``role``...),
            plus ``valves`` for a plugin with UserValves.
        emitter: ``__event_emitter__`` (``async (event: dict) -> None``), or None.
        metadata: ``__metadata__`` (``chat_id``, ``message_id``, ``files``...), or ``{}``.
    """

    request: Any
    user: dict[str, Any]
    emitter: Emitter | None = None
    metadata: dict[str, Any] = field(default_factory=dict)

    @property
    def chat_id(self) -> str | None:
        return self.metadata.get("chat_id") or None

    @property
    def message_id(self) -> str | None:
        return self.metadata.get("message_id") or None

    async def status(self, description: str, *, done: bool = False) -> None:
        """Emit an Open WebUI ``status`` event (shown above the message); never raises."""
        if self.emitter is None:
            return
        try:
            await self.emitter({"type": "status", "data": {"description": description, "done": done}})
        except Exception:  # noqa: BLE001 - a lost status line must not fail the generation
            log.debug("status event not delivered", exc_info=True)


def parse_size(size: str, *, field_name: str = "size") -> tuple[int, int]:
    """``"1024x768"`` -> ``(1024, 768)`` pixels (``x``, ``X``, ``*`` or ``×`` between).

    Raises:
        InvalidRequest: not ``WIDTHxHEIGHT`` with positive whole numbers (field ``size``).
    """
    match = re.fullmatch(r"\s*(\d{1,5})\s*[xX*×]\s*(\d{1,5})\s*", size or "")
    if not match or not int(match.group(1)) or not int(match.group(2)):
        raise InvalidRequest(f"size must be WIDTHxHEIGHT in pixels, such as 1024x1024 (got {size!r})",
                             field=field_name)
    return int(match.group(1)), int(match.group(2))


def studio_of(app: Any) -> Any:
    """The running studio mounted on Open WebUI's ``app``.

    Raises:
        ConfigError: the studio is not mounted, or did not start (field ``app.state.studio``).
    """
    studio = getattr(app.state, "studio", None)
    state = getattr(app.state, "image_studio", None)
    if studio is None:
        raise ConfigError("Image Studio is not mounted in this Open WebUI: start it with `image-studio openwebui`",
                          field="app.state.studio")
    if state is not None and not getattr(state, "ready", True):
        raise ConfigError(f"Image Studio is not available: {getattr(state, 'error', 'not started')}",
                          field="app.state.studio")
    return studio


async def openwebui_user(user: dict[str, Any]) -> Any:
    """The Open WebUI ``UserModel`` for ``__user__`` (read again from Open WebUI's database, so
    a role changed since the chat began counts).

    Raises:
        ConfigError: ``__user__`` has no ``id``, or no such user exists (field ``__user__``).
    """
    from open_webui.models.users import Users  # lazy: Open WebUI only

    user_id = (user or {}).get("id")
    found = await Users.get_user_by_id(user_id) if user_id else None
    if found is None:
        raise ConfigError("the chat's Open WebUI user is unknown", field="__user__")
    return found


def describe(event: ProgressEvent, noun: str) -> str | None:
    """The status line for a studio event, or None for events not worth one."""
    if event.type == "queued":
        place = f" (position {event.position + 1})" if event.position else ""
        return f"Queued the {noun}{place}"
    if event.type == "started":
        return f"Generating the {noun}" + (f" with {event.provider}" if event.provider else "")
    if event.type == "progress" and event.progress is not None:
        return f"Generating the {noun}: {round(event.progress * 100)}%"
    if event.type == "fallback":
        return f"Switching provider: {event.message}" if event.message else "Switching provider"
    return None


async def follow(studio: Any, job: Job, call: ChatCall, *, owner: str, wait_seconds: float, noun: str) -> Job:
    """Wait up to ``wait_seconds`` for ``job`` to end, emitting status lines from its events.

    Returns:
        The job as it is then (possibly still queued or running).

    Raises:
        asyncio.CancelledError: the chat was stopped; the studio job is canceled first.
    """
    async with studio.events(job.id) as queue:
        waiter = asyncio.ensure_future(studio.wait(job.id, wait_seconds, owner=owner))
        try:
            last = -1.0
            while not waiter.done():
                getter = asyncio.ensure_future(queue.get())
                done, _ = await asyncio.wait({waiter, getter}, return_when=asyncio.FIRST_COMPLETED)
                if getter not in done:
                    getter.cancel()
                    break
                event = getter.result()
                if event.type == "progress" and (event.progress or 0.0) - last < PROGRESS_STEP:
                    continue
                if event.type == "progress":
                    last = event.progress or 0.0
                line = describe(event, noun)
                if line:
                    await call.status(line)
            return await waiter
        except asyncio.CancelledError:
            waiter.cancel()
            await _cancel_job(studio, job.id, owner)
            await call.status(f"Stopped: the {noun} was canceled", done=True)
            raise


async def _cancel_job(studio: Any, job_id: str, owner: str) -> None:
    """Cancel the studio job after the chat was stopped (shielded from the chat's own cancel)."""
    task = asyncio.ensure_future(studio.cancel(job_id, owner=owner))
    try:
        await asyncio.wait_for(asyncio.shield(task), CANCEL_TIMEOUT)
    except (asyncio.CancelledError, asyncio.TimeoutError, ImageStudioError):
        log.warning("job %s: cancel after the chat was stopped did not finish in the chat's task", job_id)
    log.info("job %s canceled: its Open WebUI chat was stopped", job_id)


def summary(job: Job, assets: list[Any], noun: str) -> str:
    """The text returned to the model for a finished job."""
    request = job.request
    count = len(assets)
    what = noun if count == 1 else f"{noun}s"
    seeds = sorted({a.seed for a in assets if getattr(a, "seed", None) is not None})
    seed_text = f" (seed {', '.join(str(s) for s in seeds)})" if seeds else ""
    return (f"Generated {count} {what} of {request.prompt!r}{seed_text} with {job.provider or 'the studio'}. "
            f"The {what} {'is' if count == 1 else 'are'} already shown to the user in the chat: do not embed or "
            "link it again, just acknowledge it briefly.")


async def run_in_chat(call: ChatCall, request: GenerationRequest, *, wait_seconds: float,
                      describe_result: Callable[[Job, list[Any], str], str] = summary) -> str:
    """Generate ``request`` for the chat's user, put the results into the chat, and return a
    short text for the model (see the module docstring).

    Every studio error (permission, invalid size, no provider, failed job) comes back as a
    sentence for the model, not an exception: the model tells the user.

    ``describe_result(job, assets, noun)`` makes the text of a finished job (default
    :func:`summary`, for a model; the Pipe and the Action pass one written for the user).

    Raises:
        asyncio.CancelledError: the chat was stopped (the job is canceled).
    """
    noun = "video" if request.media is MediaKind.video else "image"
    try:
        studio = studio_of(call.request.app)
        user = await openwebui_user(call.user)
        from ..auth import principal_for

        principal = principal_for(user)
        gate = getattr(call.request.app.state, "generation_gate", None)
        if gate is not None:
            await gate(call.request, principal)
        await call.status(f"Submitting the {noun} request to Image Studio")
        job = await studio.submit(with_chat(request, call, studio), owner=principal.owner)
        job = await follow(studio, job, call, owner=principal.owner, wait_seconds=wait_seconds, noun=noun)
        return await _finish(studio, job, call, user, noun, wait_seconds, describe_result)
    except ImageStudioError as exc:
        await call.status(f"Image Studio: {exc.message}", done=True)
        where = f" (field {exc.field})" if exc.field else ""
        return f"The {noun} could not be generated: {exc.message}{where}."


def with_chat(request: GenerationRequest, call: ChatCall, studio: Any) -> GenerationRequest:
    """``request`` with the call's chat in ``extra['openwebui']`` (``{chat_id, message_id}``),
    so the file made for each asset (:mod:`image_studio.openwebui.files`) is linked to this
    chat; unchanged when the studio does not keep that key from its providers."""
    from ...api.openai_facade.translate import OPENWEBUI_EXTRA_KEY

    if OPENWEBUI_EXTRA_KEY not in getattr(studio, "host_extra_keys", ()) or not call.chat_id:
        return request
    context = {"chat_id": call.chat_id, "message_id": call.message_id}
    return request.model_copy(update={"extra": {**request.extra, OPENWEBUI_EXTRA_KEY: context}})


async def _finish(studio: Any, job: Job, call: ChatCall, user: Any, noun: str, wait_seconds: float,
                  describe_result: Callable[[Job, list[Any], str], str] = summary) -> str:
    from .owui_files import attach_assets

    if job.status is JobStatus.succeeded:
        assets = [await studio.get_asset(asset_id) for asset_id in job.asset_ids]
        await call.status(f"Adding the {noun} to the chat")
        await attach_assets(studio, assets, call, user, job)
        await call.status(f"Generated {len(assets)} {noun}{'' if len(assets) == 1 else 's'}", done=True)
        return describe_result(job, assets, noun)
    if not job.done:
        await call.status(f"Still generating after {wait_seconds:g} s: see Image Studio's gallery", done=True)
        return (f"The {noun} is still being generated (Image Studio job {job.id}); it will appear in the "
                "Image Studio gallery when done. Tell the user.")
    message = (job.error or {}).get("message") or job.status.value
    await call.status(f"The {noun} failed: {message}", done=True)
    return f"The {noun} could not be generated: {message}."


def image_size(data: bytes) -> str:
    """``"WIDTHxHEIGHT"`` (pixels) of an encoded image, for an edit that keeps its source's size.

    Raises:
        InvalidRequest: the bytes are not an image Pillow can read (field ``image``).
    """
    import io

    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(io.BytesIO(data)) as img:
            return f"{img.width}x{img.height}"
    except (UnidentifiedImageError, OSError) as exc:
        raise InvalidRequest("the image to edit is not a readable image file", field="image") from exc


def build_request(*, prompt: str, size: str, n: int, provider: str, workflow: str, seed: int, max_n: int,
                  media: MediaKind = MediaKind.image, init_image: bytes | None = None,
                  defaults: dict[str, str] | None = None) -> GenerationRequest:
    """A :class:`GenerationRequest` from a tool call's arguments.

    ``provider``/``workflow`` empty mean ``defaults['provider']``/``defaults['workflow']`` (the
    admin's valves), then the studio's own default and fallback chain; ``seed`` below 0 means
    random; ``n`` is limited to ``max_n``.

    Raises:
        InvalidRequest: a bad size (field ``size``), ``n`` below 1 (field ``n``), or an empty
            prompt (field ``prompt``).
    """
    defaults = defaults or {}
    width, height = parse_size(size)
    if n < 1:
        raise InvalidRequest(f"n must be at least 1 (got {n})", field="n")
    if not (prompt or "").strip():
        raise InvalidRequest("the prompt is empty: describe the image", field="prompt")
    try:
        return GenerationRequest(
            prompt=prompt.strip(), width=width, height=height, n=min(n, max(1, max_n)), media=media,
            provider=(provider or defaults.get("provider") or "").strip() or None,
            workflow=(workflow or defaults.get("workflow") or "").strip() or None,
            seed=seed if seed is not None and seed >= 0 else None, init_image=init_image,
        )
    except ValueError as exc:  # pydantic's ValidationError: sizes out of range and the like
        raise InvalidRequest(f"invalid generation request: {exc}", field="request") from exc
