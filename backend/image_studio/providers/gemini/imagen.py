"""Imagen on the Gemini API: ``POST /models/{model}:predict``.

Wire format followed:

* https://ai.google.dev/gemini-api/docs/imagen (models ``imagen-4.0-generate-001``,
  ``-ultra-generate-001``, ``-fast-generate-001``; 1 to 4 images; aspect ratios 1:1, 3:4, 4:3,
  9:16, 16:9; ``imageSize`` 1K/2K for Standard and Ultra; ``personGeneration``
  ``dont_allow`` / ``allow_adult`` (default) / ``allow_all``; English prompts up to 480 tokens);
* googleapis/python-genai ``google/genai/models.py`` as of 2026-08 (``_GenerateImagesConfig_to_mldev``
  and ``_GenerateImagesResponse_from_mldev`` before commit 43ef621 "Disable GenerateImages for
  Gemini API"): body ``{"instances": [{"prompt"}], "parameters": {"sampleCount", "aspectRatio",
  "personGeneration", "sampleImageSize", "includeRaiReason", "outputOptions": {"mimeType",
  "compressionQuality"}}}``; ``negativePrompt``, ``seed``, ``addWatermark`` and
  ``enhancePrompt`` are Vertex-only; answer ``predictions[]`` of ``{bytesBase64Encoded,
  mimeType}`` or ``{raiFilteredReason}``.

Note: that SDK commit (2026-08-21) stopped offering ``generate_images`` on the Gemini API; the
REST method ``models.predict`` is still in the API's discovery document. If Google retires
Imagen there, the API answers 404 and this adapter reports an InvalidRequest naming ``model``.
"""

from __future__ import annotations

from typing import Any, ClassVar, Literal

from pydantic import Field

from ...config import BackendConfig
from ...errors import ContentRejected, Unsupported
from ... import sizes
from ...types import Capabilities, GeneratedFile, GenerationRequest, GenerationResult, MediaKind, SizeRule
from ..base import JobContext
from ..common import image_size
from .google import GoogleProvider, GoogleSettings, decode_b64, extra_dict, nearest_ratio

ASPECT_RATIOS = ("1:1", "3:4", "4:3", "9:16", "16:9")
IMAGE_SIZES = ("1K", "2K")
PERSON_GENERATION = ("dont_allow", "allow_adult", "allow_all")
DOCUMENTED_MODELS = ("imagen-4.0-generate-001", "imagen-4.0-ultra-generate-001", "imagen-4.0-fast-generate-001")
PIXELS: dict[str, dict[str, tuple[int, int]]] = {
    "1K": {"1:1": (1024, 1024), "3:4": (896, 1280), "4:3": (1280, 896), "9:16": (768, 1408), "16:9": (1408, 768)},
    "2K": {"1:1": (2048, 2048), "3:4": (1792, 2560), "4:3": (2560, 1792), "9:16": (1536, 2816), "16:9": (2816, 1536)},
}
"""Pixels per ``sampleImageSize`` and aspect ratio (Imagen's documented output sizes)."""
AUTO_2K_ABOVE = 1536
"""A request whose larger side is over this many pixels asks for ``sampleImageSize: "2K"``
(where the model offers it) unless an image size is set."""


class ImagenSettings(GoogleSettings):
    """Settings of an ``imagen`` provider. Sizes in pixels."""

    model: str = Field("imagen-4.0-generate-001", min_length=1,
                       description="Imagen model id: imagen-4.0-generate-001, -ultra-generate-001, -fast-generate-001")
    person_generation: Literal["dont_allow", "allow_adult", "allow_all"] | None = Field(
        None, description="personGeneration; empty: the API default (allow_adult); allow_all is refused in EU/UK/CH/MENA")
    image_size: Literal["1K", "2K"] | None = Field(
        None, description="sampleImageSize; empty: 2K when the request is over 1536 px (not for fast models), else 1K")
    output_mime_type: Literal["image/png", "image/jpeg"] | None = Field(
        None, description="outputOptions.mimeType; empty: PNG")
    send_negative_prompt: bool = Field(
        False, description="send negativePrompt (only imagen-3.0-generate-002 took it on the Gemini API)")
    include_rai_reason: bool = Field(True, description="ask why images were filtered (includeRaiReason)")
    max_n: int = Field(4, ge=1, le=4, description="images per request (sampleCount, at most 4)")
    max_size: int = Field(4096, ge=256, le=16384,
                          description="largest width or height accepted, pixels (only the aspect ratio is sent)")


def sample_image_size(request: GenerationRequest, settings: ImagenSettings, model: str) -> str | None:
    """``extra["image_size"]``, else the setting, else "2K" for a large request on a model that has it."""
    size = request.extra.get("image_size") or settings.image_size
    if size:
        return str(size)
    if max(request.width, request.height) > AUTO_2K_ABOVE and "fast" not in model:
        return "2K"
    return None


def build_body(request: GenerationRequest, settings: ImagenSettings, model: str) -> dict[str, Any]:
    """The ``predict`` body. ``extra`` passes through: ``aspect_ratio``, ``image_size``,
    ``person_generation`` and ``parameters`` (merged into ``parameters``)."""
    params: dict[str, Any] = {
        "sampleCount": request.n,
        "aspectRatio": str(request.extra.get("aspect_ratio") or nearest_ratio(request.width, request.height,
                                                                              ASPECT_RATIOS)),
    }
    if person := request.extra.get("person_generation") or settings.person_generation:
        params["personGeneration"] = str(person)
    if size := sample_image_size(request, settings, model):
        params["sampleImageSize"] = size
    if request.negative_prompt and settings.send_negative_prompt:
        params["negativePrompt"] = request.negative_prompt
    if settings.include_rai_reason:
        params["includeRaiReason"] = True
    if settings.output_mime_type:
        params["outputOptions"] = {"mimeType": settings.output_mime_type}
    params.update(extra_dict(request, "parameters"))
    return {"instances": [{"prompt": request.prompt}], "parameters": params}


def parse_predictions(data: dict[str, Any], **kw: Any) -> tuple[list[tuple[bytes, str]], list[str]]:
    """The images (``(bytes, mime type)``) of a ``predict`` answer and the filter reasons given.

    Raises:
        ContentRejected: no image came back (the prompt or every image was filtered).
    """
    images: list[tuple[bytes, str]] = []
    reasons: list[str] = []
    for pred in data.get("predictions") or []:
        if not isinstance(pred, dict):
            continue
        if pred.get("bytesBase64Encoded"):
            images.append((decode_b64(pred["bytesBase64Encoded"], what="bytesBase64Encoded", **kw),
                           str(pred.get("mimeType") or "image/png")))
        elif pred.get("raiFilteredReason"):
            reasons.append(str(pred["raiFilteredReason"]))
    if not images:
        why = "; ".join(reasons) or "no predictions: the prompt or every image was filtered by safety"
        raise ContentRejected(f"Imagen returned no image: {why}", **kw)
    return images, reasons


class ImagenProvider(GoogleProvider):
    """Adapter for Imagen on the Gemini API (config type ``imagen``): txt2img only (editing is
    Vertex-only). Credential: ``credentials.api_key`` (a Gemini API key)."""

    type: ClassVar[str] = "imagen"
    credential_fields: ClassVar[dict[str, bool]] = {"api_key": True}
    Settings: ClassVar[type[ImagenSettings]] = ImagenSettings
    model_methods: ClassVar[tuple[str, ...]] = ("predict",)

    @staticmethod
    def model_matches(name: str) -> bool:
        return name.startswith("imagen")

    @property
    def capabilities(self) -> Capabilities:
        s = self.settings
        return Capabilities(media=[MediaKind.image], txt2img=True, img2img=False, inpaint=False,
                            max_width=s.max_size, max_height=s.max_size, max_n=s.max_n,
                            negative_prompt=s.send_negative_prompt, seed=False, sizes=self.size_rule())

    def size_rule(self, model: str | None = None) -> SizeRule:
        """Imagen's five aspect ratios with their pixels: at the ``image_size`` setting, else 1K
        and 2K (1K only for fast models). A size over 1536 px asks for 2K (:func:`sample_image_size`)."""
        model = model or self.settings.model
        tiers = [self.settings.image_size] if self.settings.image_size else ["1K"] if "fast" in model else ["1K", "2K"]
        return sizes.ratios([(r, w, h, t) for t in tiers for r, (w, h) in PIXELS[t].items()],
                            note=f"{model}: aspectRatio and sampleImageSize")

    async def generate(self, request: GenerationRequest, ctx: JobContext) -> GenerationResult:
        """One ``predict`` call with ``sampleCount = n``.

        Raises:
            JobCanceled, Unsupported (video or an init image), InvalidRequest, AuthenticationFailed,
            RateLimited, ContentRejected (everything filtered), ProviderUnavailable, ProviderTimeout.
        """
        self.check_media(request, ctx)
        if request.init_image is not None:
            raise Unsupported("Imagen on the Gemini API makes images from text only", provider=self.id,
                              field="init_image")
        backend, model = ctx.backend or self.backends[0], self.model_name(request)
        body = build_body(request, self.settings, model)
        await ctx.report_progress(0, 1, message="generating")
        data = await self.call("POST", backend, f"models/{model}:predict", body=body, what="predict",
                               timeout=self.generation_timeout(ctx))
        images, reasons = parse_predictions(data, **self.error_kwargs(backend))
        await ctx.report_progress(1, 1)
        p = body["parameters"]
        params = {"aspect_ratio": p["aspectRatio"], "image_size": p.get("sampleImageSize"),
                  "person_generation": p.get("personGeneration"), "model": model}
        files = []
        for raw, mime in images:
            width, height = image_size(raw)
            files.append(GeneratedFile(data=raw, mime_type=mime, media=MediaKind.image, width=width, height=height,
                                       parameters={k: v for k, v in params.items() if v is not None}))
        info = {"rai_filtered_reasons": reasons} if reasons else {}
        return GenerationResult(files=files, provider=self.id, backend=backend.label if backend else None,
                                model=model, info=info)

    async def options(self, backend: BackendConfig | None = None) -> dict[str, Any]:
        """``{"aspect_ratios", "image_sizes", "person_generation", "models"}`` (documented values)."""
        return {"aspect_ratios": list(ASPECT_RATIOS), "image_sizes": list(IMAGE_SIZES),
                "person_generation": list(PERSON_GENERATION), "models": list(DOCUMENTED_MODELS),
                "model": self.model_name()}
