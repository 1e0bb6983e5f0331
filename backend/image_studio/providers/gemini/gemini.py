"""Gemini native image generation ("Nano Banana"): ``POST /models/{model}:generateContent``.

Wire format followed:

* https://ai.google.dev/gemini-api/docs/image-generation (text-to-image, image editing with an
  ``inlineData`` part next to the text, ``generationConfig.responseModalities``,
  ``generationConfig.imageConfig.aspectRatio`` / ``imageSize``);
* https://ai.google.dev/api/generate-content (``GenerateContentResponse``: ``candidates[].content
  .parts[]`` with ``inlineData {mimeType, data}`` or ``text``, ``thought`` parts, ``finishReason``
  / ``finishMessage``, ``promptFeedback.blockReason``, ``generationConfig.seed``);
* googleapis/python-genai ``google/genai/models.py`` (``_ImageConfig_to_mldev``: ``aspectRatio``,
  ``imageSize``; ``personGeneration`` and output MIME options are Vertex-only) and
  ``google/genai/types.py`` (``FinishReason``, ``BlockedReason`` values; ``ImageConfig``).

The image models answer one image per call (``candidateCount`` > 1 is not offered for them), so
``n`` > 1 makes ``n`` calls in a row, seeds counting up from the request's seed.
"""

from __future__ import annotations

from typing import Any, ClassVar, Literal

from pydantic import Field

from ...config import BackendConfig
from ...errors import ContentRejected, GenerationFailed, Unsupported
from ... import sizes
from ...types import Capabilities, GeneratedFile, GenerationRequest, GenerationResult, MediaKind, SizeRule
from ..base import JobContext
from ..common import image_size
from .google import GoogleProvider, GoogleSettings, decode_b64, extra_dict, image_input, nearest_ratio

ASPECT_RATIOS = ("1:1", "2:3", "3:2", "3:4", "4:3", "4:5", "5:4", "9:16", "16:9", "21:9")
"""``imageConfig.aspectRatio`` values the image-generation page documents for every model."""

IMAGE_SIZES = ("1K", "2K", "4K")
"""``imageConfig.imageSize`` values (Gemini 3 image models; 1K is the default)."""

DOCUMENTED_MODELS = ("gemini-2.5-flash-image", "gemini-3-pro-image-preview", "gemini-3.1-flash-image-preview")

REJECT_REASONS = frozenset({"SAFETY", "PROHIBITED_CONTENT", "IMAGE_SAFETY", "IMAGE_PROHIBITED_CONTENT", "BLOCKLIST",
                            "SPII", "RECITATION", "IMAGE_RECITATION", "NO_IMAGE", "LANGUAGE"})
"""``finishReason`` values that mean the model refused (ContentRejected); others are failures."""

PIXELS_25: dict[str, tuple[int, int]] = {
    "1:1": (1024, 1024), "2:3": (832, 1248), "3:2": (1248, 832), "3:4": (864, 1184), "4:3": (1184, 864),
    "4:5": (896, 1152), "5:4": (1152, 896), "9:16": (768, 1344), "16:9": (1344, 768), "21:9": (1536, 672)}
"""Pixels per aspect ratio of gemini-2.5-flash-image (one size, 1K; the image-generation page's
resolution table)."""

PIXELS_3: dict[str, dict[str, tuple[int, int]]] = {
    "1K": {"1:1": (1024, 1024), "2:3": (848, 1264), "3:2": (1264, 848), "3:4": (896, 1200), "4:3": (1200, 896),
           "4:5": (928, 1152), "5:4": (1152, 928), "9:16": (768, 1376), "16:9": (1376, 768), "21:9": (1584, 672)},
    "2K": {"1:1": (2048, 2048), "2:3": (1696, 2528), "3:2": (2528, 1696), "3:4": (1792, 2400), "4:3": (2400, 1792),
           "4:5": (1856, 2304), "5:4": (2304, 1856), "9:16": (1536, 2752), "16:9": (2752, 1536), "21:9": (3168, 1344)},
    "4K": {"1:1": (4096, 4096), "2:3": (3392, 5056), "3:2": (5056, 3392), "3:4": (3584, 4800), "4:3": (4800, 3584),
           "4:5": (3712, 4608), "5:4": (4608, 3712), "9:16": (3072, 5504), "16:9": (5504, 3072),
           "21:9": (6336, 2688)},
}
"""Pixels per aspect ratio and ``imageSize`` of the Gemini 3 image models (the same table)."""


def size_rule_for(model: str, image_size: str | None) -> SizeRule:
    """The aspect-ratio rule of ``model`` at ``image_size`` (the setting; 1K when empty): the
    ratio is what the API takes, the pixels what it answers with."""
    if model.startswith("gemini-3"):
        tier = image_size or "1K"
        table = PIXELS_3.get(tier, PIXELS_3["1K"])
        return sizes.ratios([(r, w, h, tier) for r, (w, h) in table.items()],
                            note=f"{model}: imageConfig.aspectRatio; imageSize {tier} (setting image_size)")
    return sizes.ratios([(r, w, h, "1K") for r, (w, h) in PIXELS_25.items()],
                        note=f"{model}: imageConfig.aspectRatio; one size per ratio")


SEED_MASK = 0x7FFFFFFF
"""``generationConfig.seed`` is an int32: larger request seeds are folded into it."""


class GeminiSettings(GoogleSettings):
    """Settings of a ``gemini`` provider (Gemini image models). Sizes in pixels."""

    model: str = Field("gemini-2.5-flash-image", min_length=1,
                       description="image model id, e.g. gemini-2.5-flash-image, gemini-3-pro-image-preview")
    image_size: Literal["1K", "2K", "4K"] | None = Field(
        None, description="imageConfig.imageSize (Gemini 3 image models only); empty: the model's default (1K)")
    response_modalities: list[Literal["TEXT", "IMAGE"]] = Field(
        default_factory=lambda: ["TEXT", "IMAGE"], min_length=1,
        description="generationConfig.responseModalities; ['IMAGE'] asks for images without text")
    max_n: int = Field(4, ge=1, le=16, description="images per request (one API call each)")
    max_size: int = Field(4096, ge=256, le=16384,
                          description="largest width or height accepted, pixels (only the aspect ratio is sent)")


def aspect_ratio(request: GenerationRequest) -> str | None:
    """``extra["aspect_ratio"]``, else the supported ratio nearest to width/height; None for an
    edit whose request did not set width or height (the model keeps the input's shape)."""
    if request.extra.get("aspect_ratio"):
        return str(request.extra["aspect_ratio"])
    if request.init_image is not None and not ({"width", "height"} & request.model_fields_set):
        return None
    return nearest_ratio(request.width, request.height, ASPECT_RATIOS)


def build_body(request: GenerationRequest, settings: GeminiSettings, seed: int | None) -> dict[str, Any]:
    """The ``generateContent`` body for one image of ``request``.

    ``extra`` passes through: ``aspect_ratio``, ``image_size``, ``response_modalities`` (list),
    ``generation_config`` (merged into ``generationConfig``), ``safety_settings`` (list, as
    ``safetySettings``), ``system_instruction`` (text).
    """
    parts: list[dict[str, Any]] = [{"text": request.prompt}]
    if request.init_image is not None:
        mime, data = image_input(request.init_image, "init_image")
        parts.append({"inlineData": {"mimeType": mime, "data": data}})
    image_config: dict[str, Any] = {}
    if (ratio := aspect_ratio(request)) is not None:
        image_config["aspectRatio"] = ratio
    if size := request.extra.get("image_size") or settings.image_size:
        image_config["imageSize"] = str(size)
    config: dict[str, Any] = {"responseModalities": list(request.extra.get("response_modalities")
                                                          or settings.response_modalities)}
    if image_config:
        config["imageConfig"] = image_config
    if seed is not None:
        config["seed"] = seed
    config.update(extra_dict(request, "generation_config"))
    body: dict[str, Any] = {"contents": [{"role": "user", "parts": parts}], "generationConfig": config}
    if request.extra.get("safety_settings"):
        body["safetySettings"] = request.extra["safety_settings"]
    if request.extra.get("system_instruction"):
        body["systemInstruction"] = {"parts": [{"text": str(request.extra["system_instruction"])}]}
    return body


def _no_image_error(data: dict[str, Any], texts: list[str], kw: dict[str, Any]) -> Exception:
    """Why an answer holds no image: ContentRejected for a refusal, else GenerationFailed."""
    candidates = [c for c in data.get("candidates") or [] if isinstance(c, dict)]
    if not candidates:
        return GenerationFailed("the answer has no candidates and no block reason", **kw)
    reasons = [str(c.get("finishReason") or "STOP") for c in candidates]
    reason = next((r for r in reasons if r != "STOP"), "STOP")
    detail = next((str(c["finishMessage"]) for c in candidates if c.get("finishMessage")), "")
    said = " ".join(t.strip() for t in texts if t.strip())[:300]
    message = f"no image in the answer (finishReason {reason})" + "".join(f": {s}" for s in (detail, said) if s)
    if reason in REJECT_REASONS or (reason == "STOP" and said):
        return ContentRejected(message, **kw)
    return GenerationFailed(message, **kw)


def parse_answer(data: dict[str, Any], **kw: Any) -> tuple[list[tuple[bytes, str]], dict[str, Any]]:
    """The images (``(bytes, mime type)``) of a ``generateContent`` answer and what it reported
    (``text``, ``finish_reasons``, ``model_version``, ``response_id``, ``usage``). Thought
    parts (interim images of thinking models) are skipped.

    Raises:
        ContentRejected: ``promptFeedback.blockReason``, a refusal ``finishReason`` or a text-only answer.
        GenerationFailed: no candidates, or no image for another reason.
    """
    feedback = data.get("promptFeedback") or {}
    if isinstance(feedback, dict) and feedback.get("blockReason"):
        note = feedback.get("blockReasonMessage")
        raise ContentRejected(f"prompt blocked: {feedback['blockReason']}" + (f": {note}" if note else ""), **kw)
    images: list[tuple[bytes, str]] = []
    texts: list[str] = []
    for cand in data.get("candidates") or []:
        for part in ((cand or {}).get("content") or {}).get("parts") or []:
            if not isinstance(part, dict) or part.get("thought"):
                continue
            inline = part.get("inlineData") or part.get("inline_data") or {}
            mime = str(inline.get("mimeType") or inline.get("mime_type") or "")
            if mime.startswith("image/") and inline.get("data"):
                images.append((decode_b64(inline["data"], what="inlineData", **kw), mime))
            elif isinstance(part.get("text"), str):
                texts.append(part["text"])
    if not images:
        raise _no_image_error(data, texts, kw)
    report = {"text": "\n".join(texts) or None, "model_version": data.get("modelVersion"),
              "response_id": data.get("responseId"), "usage": data.get("usageMetadata"),
              "finish_reasons": [c.get("finishReason") for c in data.get("candidates") or [] if isinstance(c, dict)]}
    return images, {k: v for k, v in report.items() if v is not None}


class GeminiProvider(GoogleProvider):
    """Adapter for the Gemini image models (config type ``gemini``): txt2img and edits
    (``init_image``). Credential: ``credentials.api_key`` (a Gemini API key)."""

    type: ClassVar[str] = "gemini"
    credential_fields: ClassVar[dict[str, bool]] = {"api_key": True}
    Settings: ClassVar[type[GeminiSettings]] = GeminiSettings
    model_methods: ClassVar[tuple[str, ...]] = ("generateContent",)

    @staticmethod
    def model_matches(name: str) -> bool:
        """Gemini image models: ``gemini-*image*`` (Imagen and Veo have their own adapters)."""
        return name.startswith("gemini") and "image" in name

    @property
    def capabilities(self) -> Capabilities:
        s = self.settings
        return Capabilities(media=[MediaKind.image], txt2img=True, img2img=True, inpaint=False,
                            max_width=s.max_size, max_height=s.max_size, max_n=s.max_n,
                            negative_prompt=False, seed=True, sizes=self.size_rule())

    def size_rule(self, model: str | None = None) -> SizeRule:
        """The aspect ratios of ``model`` (default: the setting) with their pixels."""
        return size_rule_for(model or self.settings.model, self.settings.image_size)

    async def generate(self, request: GenerationRequest, ctx: JobContext) -> GenerationResult:
        """One ``generateContent`` call per image (``n`` calls), progress ``i`` of ``n``.

        Raises:
            JobCanceled, Unsupported (video or a mask), InvalidRequest (a bad input image or
            ``extra`` field; a 400 naming our field), AuthenticationFailed, RateLimited,
            ContentRejected, ProviderUnavailable, ProviderTimeout, GenerationFailed.
        """
        self.check_media(request, ctx)
        if request.mask is not None:
            raise Unsupported("Gemini image models take no mask (send init_image without one)",
                              provider=self.id, field="mask")
        backend, model = ctx.backend or self.backends[0], self.model_name(request)
        files: list[GeneratedFile] = []
        usage: list[Any] = []
        for i in range(request.n):
            ctx.raise_if_canceled()
            await ctx.report_progress(i, request.n, message=f"image {i + 1} of {request.n}")
            seed = (request.seed + i) & SEED_MASK if request.seed is not None and request.seed >= 0 else None
            body = build_body(request, self.settings, seed)
            data = await self.call("POST", backend, f"models/{model}:generateContent", body=body,
                                   what="generateContent", timeout=self.generation_timeout(ctx))
            images, report = parse_answer(data, **self.error_kwargs(backend))
            usage.append(report.pop("usage", None))
            files.extend(self._file(raw, mime, seed, body, report) for raw, mime in images)
        await ctx.report_progress(request.n, request.n)
        return GenerationResult(files=files, provider=self.id, backend=self._label(backend), model=model,
                                info={"usage": [u for u in usage if u]})

    @staticmethod
    def _label(backend: BackendConfig | None) -> str | None:
        return backend.label if backend else None

    @staticmethod
    def _file(raw: bytes, mime: str, seed: int | None, body: dict[str, Any], report: dict[str, Any]) -> GeneratedFile:
        width, height = image_size(raw)
        image_config = body["generationConfig"].get("imageConfig", {})
        params = {"aspect_ratio": image_config.get("aspectRatio"), "image_size": image_config.get("imageSize"),
                  **report, "seed": seed}
        return GeneratedFile(data=raw, mime_type=mime, media=MediaKind.image, width=width, height=height,
                             seed=seed, parameters={k: v for k, v in params.items() if v is not None})

    async def options(self, backend: BackendConfig | None = None) -> dict[str, Any]:
        """``{"aspect_ratios", "image_sizes", "models"}`` (documented values; no API call)."""
        return {"aspect_ratios": list(ASPECT_RATIOS), "image_sizes": list(IMAGE_SIZES),
                "models": list(DOCUMENTED_MODELS), "model": self.model_name()}
