"""Veo video generation on the Gemini API: ``POST /models/{model}:predictLongRunning``, then poll
the operation with ``GET /{operation name}`` until ``done``, then download the video.

Wire format followed:

* https://ai.google.dev/gemini-api/docs/video (text-to-video and image-to-video; REST: submit,
  poll ``GET {base}/{name}`` every ~10 s until ``done: true``, then
  ``response.generateVideoResponse.generatedSamples[0].video.uri`` downloaded with the
  ``x-goog-api-key`` header, following redirects; aspect ratios 16:9 / 9:16; resolution 720p /
  1080p (4k on Veo 3.1); durations 4, 6, 8 s; ``personGeneration``);
* googleapis/python-genai ``google/genai/models.py`` (``_GenerateVideosParameters_to_mldev``,
  ``_GenerateVideosConfig_to_mldev``: ``instances[0].prompt``, ``instances[0].image
  {bytesBase64Encoded, mimeType}``, ``parameters {sampleCount, durationSeconds, aspectRatio,
  resolution, personGeneration, negativePrompt, enhancePrompt}``; ``seed``, ``fps`` and
  ``generateAudio`` are Vertex-only) and ``_GenerateVideosOperation_from_mldev`` /
  ``_GeneratedVideo_from_mldev`` / ``_Video_from_mldev`` (``video {uri, encodedVideo,
  encoding}``, ``raiMediaFilteredCount``, ``raiMediaFilteredReasons``). The SDK-shaped
  ``generatedVideos[].video {uri, videoBytes, mimeType}`` and Vertex's ``videos[] {gcsUri,
  bytesBase64Encoded, mimeType}`` are accepted too;
* discovery document ``generativelanguage:v1beta``: ``models.operations`` has only ``get`` and
  ``list``: there is no cancel for a Veo operation, so :meth:`VeoProvider.cancel` stops polling
  and sends nothing (the remote run finishes, and is billed, regardless).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any, ClassVar, Literal

import httpx
from pydantic import Field

from ..config import BackendConfig
from ..errors import ContentRejected, GenerationFailed, ProviderUnavailable, Unsupported
from .. import sizes
from ..types import Capabilities, GeneratedFile, GenerationRequest, GenerationResult, MediaKind, SizeRule
from .base import JobContext
from .common import DOWNLOAD_TIMEOUT, poll
from .gemini.google import (GoogleProvider, GoogleSettings, decode_b64, extra_dict, image_input, looks_like_safety,
                            nearest_ratio)

ASPECT_RATIOS = ("16:9", "9:16")
RESOLUTIONS = ("720p", "1080p", "4k")
DURATIONS = (4, 6, 8)
PERSON_GENERATION = ("dont_allow", "allow_adult", "allow_all")
DOCUMENTED_MODELS = ("veo-3.1-generate-preview", "veo-3.1-fast-generate-preview", "veo-3.0-generate-001",
                     "veo-3.0-fast-generate-001", "veo-2.0-generate-001")
SHORT_SIDE = {"720p": 720, "1080p": 1080, "4k": 2160}
"""Pixels of the short side per ``resolution`` (16:9 or 9:16 frames)."""
MAX_REDIRECTS = 5


class VeoSettings(GoogleSettings):
    """Settings of a ``veo`` provider. Times in seconds, sizes in pixels."""

    model: str = Field("veo-3.0-generate-001", min_length=1,
                       description="Veo model id, e.g. veo-3.0-generate-001, veo-3.1-generate-preview")
    poll_interval: float = Field(10.0, ge=0.01, le=120, description="seconds between operation polls")
    expected_seconds: float = Field(90.0, gt=0, le=3600,
                                    description="typical run time, seconds; drives the progress estimate")
    duration_seconds: int | None = Field(None, ge=4, le=8,
                                         description="durationSeconds (Veo 3: 4, 6 or 8); empty: the model's default (8)")
    resolution: Literal["720p", "1080p", "4k"] | None = Field(
        None, description="resolution; empty: from the request size (over 1280 px: 1080p, over 1920 px: 4k)")
    person_generation: Literal["dont_allow", "allow_adult", "allow_all"] | None = Field(
        None, description="personGeneration; empty: the API default (text-to-video takes allow_all, "
                          "image-to-video allow_adult)")
    max_n: int = Field(1, ge=1, le=4, description="videos per request (sampleCount; Veo 3 makes 1)")
    max_size: int = Field(3840, ge=720, le=3840, description="largest width or height accepted, pixels")


@dataclass
class Sample:
    """One generated video in a finished operation: a URI to download or the bytes inline."""

    uri: str | None
    data: bytes | None
    mime_type: str


def resolution_for(request: GenerationRequest, settings: VeoSettings) -> str | None:
    """``extra["resolution"]``, else the setting, else from the larger side (None: the API's 720p)."""
    chosen = request.extra.get("resolution") or settings.resolution
    if chosen:
        return str(chosen)
    side = max(request.width, request.height)
    return None if side <= 1280 else "1080p" if side <= 1920 else "4k"


def build_body(request: GenerationRequest, settings: VeoSettings) -> dict[str, Any]:
    """The ``predictLongRunning`` body. ``extra`` passes through: ``aspect_ratio``,
    ``resolution``, ``duration_seconds``, ``person_generation``, ``instance`` (merged into
    ``instances[0]``) and ``parameters`` (merged into ``parameters``)."""
    instance: dict[str, Any] = {"prompt": request.prompt}
    if request.init_image is not None:
        mime, data = image_input(request.init_image, "init_image")
        instance["image"] = {"bytesBase64Encoded": data, "mimeType": mime}
    instance.update(extra_dict(request, "instance"))
    params: dict[str, Any] = {"aspectRatio": str(request.extra.get("aspect_ratio") or
                                                 nearest_ratio(request.width, request.height, ASPECT_RATIOS))}
    if resolution := resolution_for(request, settings):
        params["resolution"] = resolution
    if duration := request.extra.get("duration_seconds") or settings.duration_seconds:
        params["durationSeconds"] = int(duration)
    if request.negative_prompt:
        params["negativePrompt"] = request.negative_prompt
    if person := request.extra.get("person_generation") or settings.person_generation:
        params["personGeneration"] = str(person)
    if request.n > 1:
        params["sampleCount"] = request.n
    params.update(extra_dict(request, "parameters"))
    return {"instances": [instance], "parameters": params}


def _sample(item: Any, **kw: Any) -> Sample | None:
    video = item.get("video") if isinstance(item, dict) and isinstance(item.get("video"), dict) else item
    if not isinstance(video, dict):
        return None
    mime = str(video.get("encoding") or video.get("mimeType") or "video/mp4")
    inline = video.get("encodedVideo") or video.get("videoBytes") or video.get("bytesBase64Encoded")
    if inline:
        return Sample(uri=None, data=decode_b64(inline, what="video bytes", **kw), mime_type=mime)
    uri = video.get("uri") or video.get("gcsUri")
    return Sample(uri=str(uri), data=None, mime_type=mime) if uri else None


def operation_samples(op: dict[str, Any], **kw: Any) -> list[Sample]:
    """The videos of a finished operation.

    Raises:
        ContentRejected: every video was filtered (``raiMediaFilteredReasons``) or the
            operation's error reads as a safety refusal.
        GenerationFailed: the operation ended with another error, or with no videos.
    """
    error = op.get("error")
    if isinstance(error, dict):
        message = f"operation {op.get('name')} failed: {error.get('code')}: {error.get('message') or ''}"
        raise (ContentRejected if looks_like_safety(message) else GenerationFailed)(message, **kw)
    response = op.get("response") if isinstance(op.get("response"), dict) else {}
    result = response.get("generateVideoResponse") if isinstance(response.get("generateVideoResponse"), dict) \
        else response
    items = result.get("generatedSamples") or result.get("generatedVideos") or result.get("videos") or []
    samples = [s for s in (_sample(i, **kw) for i in items) if s is not None]
    if samples:
        return samples
    reasons = [str(r) for r in result.get("raiMediaFilteredReasons") or []]
    if reasons or result.get("raiMediaFilteredCount"):
        raise ContentRejected("Veo filtered the video: " + ("; ".join(reasons) or "no reason given"), **kw)
    raise GenerationFailed(f"operation {op.get('name')} finished without a video", **kw)


def frame_size(aspect: str, resolution: str | None) -> tuple[int, int]:
    """``(width, height)`` in pixels of a video of ``aspect`` ("16:9"/"9:16") at ``resolution``."""
    short = SHORT_SIDE.get(resolution or "720p", 720)
    long = short * 16 // 9
    return (long, short) if aspect == "16:9" else (short, long)


def _trusted(host: str, api_host: str) -> bool:
    """Hosts that may see the API key: the configured base URL's and Google API hosts."""
    return host == api_host or host == "googleapis.com" or host.endswith(".googleapis.com")


class VeoProvider(GoogleProvider):
    """Adapter for Veo on the Gemini API (config type ``veo``): text-to-video and image-to-video
    (``init_image`` is the first frame), resumable by operation name. Credential:
    ``credentials.api_key`` (a Gemini API key)."""

    type: ClassVar[str] = "veo"
    credential_fields: ClassVar[dict[str, bool]] = {"api_key": True}
    Settings: ClassVar[type[VeoSettings]] = VeoSettings
    model_methods: ClassVar[tuple[str, ...]] = ("predictLongRunning",)
    media: ClassVar[MediaKind] = MediaKind.video

    @staticmethod
    def model_matches(name: str) -> bool:
        return name.startswith("veo")

    @property
    def capabilities(self) -> Capabilities:
        s = self.settings
        return Capabilities(media=[MediaKind.video], txt2img=True, img2img=True, inpaint=False, video=True,
                            max_width=s.max_size, max_height=s.max_size, max_n=s.max_n, negative_prompt=True,
                            seed=False, async_only=True, resumable=True, sizes=self.size_rule())

    def size_rule(self, model: str | None = None) -> SizeRule:
        """16:9 and 9:16 frames at the ``resolution`` setting, else at 720p, 1080p and 4k (the
        request's larger side picks the resolution: :func:`resolution_for`)."""
        tiers = [self.settings.resolution] if self.settings.resolution else list(RESOLUTIONS)
        return sizes.ratios([(r, *frame_size(r, t), t) for t in tiers for r in ASPECT_RATIOS],
                            note="aspectRatio and resolution; which resolutions a model offers varies")

    async def generate(self, request: GenerationRequest, ctx: JobContext) -> GenerationResult:
        """Submit (unless ``ctx.resume_id`` names an operation), remember the operation name,
        poll it every ``poll_interval`` s with progress estimates, then fetch the videos.

        Raises:
            JobCanceled, Unsupported (an image request or a mask), InvalidRequest,
            AuthenticationFailed, RateLimited, ContentRejected, GenerationFailed,
            ProviderUnavailable, ProviderTimeout (also when polling outlives the attempt).
        """
        self.check_media(request, ctx)
        if request.mask is not None:
            raise Unsupported("Veo takes no mask", provider=self.id, field="mask")
        backend, model = ctx.backend or self.backends[0], self.model_name(request)
        body = build_body(request, self.settings)
        op = await self._start(ctx, backend, model, body)
        if not op.get("done"):
            op = await self._wait(ctx, backend, op["name"])
        files = []
        for sample in operation_samples(op, **self.error_kwargs(backend)):
            files.append(await self._file(ctx, backend, sample, body, model))
        await ctx.report_progress(1, 1, message="done")
        return GenerationResult(files=files, provider=self.id, backend=backend.label if backend else None,
                                model=model, provider_job_id=op.get("name"),
                                info={"operation": op.get("name")})

    async def _start(self, ctx: JobContext, backend: BackendConfig | None, model: str,
                     body: dict[str, Any]) -> dict[str, Any]:
        """The operation to follow: ``{"name": ctx.resume_id}`` when resuming, else a new one
        (its name remembered before any poll)."""
        if ctx.resume_id:
            return {"name": ctx.resume_id}
        op = await self.call("POST", backend, f"models/{model}:predictLongRunning", body=body,
                             what="predictLongRunning", timeout=self.generation_timeout(ctx))
        if not isinstance(op.get("name"), str) or not op["name"]:
            raise GenerationFailed("predictLongRunning answered without an operation name",
                                   **self.error_kwargs(backend))
        await ctx.remember(op["name"])
        return op

    async def _wait(self, ctx: JobContext, backend: BackendConfig | None, name: str) -> dict[str, Any]:
        """Poll ``GET {base}/{name}`` until ``done``, reporting progress after every poll."""
        started, expected = time.monotonic(), self.settings.expected_seconds

        async def fetch() -> dict[str, Any]:
            timeout = max(1.0, min(self.settings.request_timeout, ctx.remaining))
            return await self.call("GET", backend, name, what="GET operation", timeout=timeout)

        async def update(op: dict[str, Any], n: int) -> None:
            if op.get("done"):
                return
            meta = op.get("metadata") if isinstance(op.get("metadata"), dict) else {}
            percent = meta.get("progressPercent")
            elapsed = time.monotonic() - started
            if isinstance(percent, (int, float)):
                await ctx.report_progress(percent, 100, message=f"running ({percent:g}%)")
            else:
                await ctx.report_progress(round(min(elapsed, 0.95 * expected), 1), expected,
                                          message=f"running ({elapsed:.0f} s, poll {n})")

        interval = self.settings.poll_interval
        return await poll(ctx, fetch, lambda op: bool(op.get("done")), interval=interval, on_update=update,
                          max_interval=interval * 2)

    async def _file(self, ctx: JobContext, backend: BackendConfig | None, sample: Sample, body: dict[str, Any],
                    model: str) -> GeneratedFile:
        data, mime = sample.data, sample.mime_type
        if data is None:
            data, ctype = await self._download(ctx, backend, str(sample.uri))
            mime = ctype if ctype and ctype.startswith("video/") else mime
        params = body["parameters"]
        width, height = frame_size(params["aspectRatio"], params.get("resolution"))
        report = {"model": model, "aspect_ratio": params["aspectRatio"], "resolution": params.get("resolution"),
                  "duration_seconds": params.get("durationSeconds"), "uri": sample.uri}
        return GeneratedFile(data=data, mime_type=mime, media=MediaKind.video, width=width, height=height,
                             parameters={k: v for k, v in report.items() if v is not None})

    async def _download(self, ctx: JobContext, backend: BackendConfig | None, uri: str) -> tuple[bytes, str | None]:
        """GET a video URI with the API key, following up to :data:`MAX_REDIRECTS` redirects by
        hand so that the key is only sent to the API's own host and Google API hosts.

        Raises:
            GenerationFailed: a ``gs://`` URI (needs Cloud Storage credentials).
            ProviderUnavailable: too many redirects; the :meth:`check` errors for a bad answer.
        """
        if uri.startswith("gs://"):
            raise GenerationFailed(f"the video is in Cloud Storage ({uri}); a Gemini API key cannot fetch it",
                                   **self.error_kwargs(backend))
        api_host, url = httpx.URL(self.backend_url(backend)).host, httpx.URL(uri)
        for _ in range(MAX_REDIRECTS + 1):
            headers = self.headers(backend) if _trusted(url.host, api_host) else {}
            timeout = max(1.0, min(DOWNLOAD_TIMEOUT, ctx.remaining))
            async with self.transport_errors(backend):
                response = await self.http.get(url, headers=headers, timeout=timeout, follow_redirects=False)
            if response.is_redirect and "location" in response.headers:
                url = url.join(response.headers["location"])
                continue
            self.check(response, backend, what="download video")
            ctype = response.headers.get("content-type")
            return response.content, ctype.split(";")[0].strip() if ctype else None
        raise ProviderUnavailable(f"download video: more than {MAX_REDIRECTS} redirects", **self.error_kwargs(backend))

    async def cancel(self, ctx: JobContext) -> None:
        """Nothing to send: the Gemini API offers no cancel for ``models/*/operations/*`` (only
        ``get`` and ``list``). Polling stops on the job's cancel event; the remote run goes on."""
        if ctx.provider_job_id:
            self.logger.info("Veo operations cannot be canceled; %s runs to its end", ctx.provider_job_id)

    async def options(self, backend: BackendConfig | None = None) -> dict[str, Any]:
        """``{"aspect_ratios", "resolutions", "durations", "person_generation", "models"}``."""
        return {"aspect_ratios": list(ASPECT_RATIOS), "resolutions": list(RESOLUTIONS), "durations": list(DURATIONS),
                "person_generation": list(PERSON_GENERATION), "models": list(DOCUMENTED_MODELS),
                "model": self.model_name()}
