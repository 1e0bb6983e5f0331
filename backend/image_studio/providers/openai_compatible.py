"""OpenAI-compatible provider: the OpenAI adapter pointed at another server that speaks the
OpenAI Images API — a LiteLLM proxy, LocalAI, vLLM-Omni ...

It is :class:`~image_studio.providers.openai.OpenAIProvider` (same requests, answers, errors,
uploads and downloads) with these differences:

* the base URL (``backends[0].url``, with its ``/v1`` where the server has one) is required;
* ``credentials.api_key`` is optional: without one no ``Authorization`` header is sent;
* sizes are not checked against OpenAI's lists: any ``WxH`` up to ``max_size`` pixels a side
  (or ``extra.size: "auto"``) is sent, and every set model field is sent as is;
* models come from ``GET {base}/models`` when it answers, else from the ``models`` setting;
* ``negative_prompt_separator`` joins a negative prompt onto the prompt, the LocalAI way
  (``"a cute otter|blurry"``; LocalAI ``docs/content/docs/features/image-generation.md``).

Wire format: https://platform.openai.com/docs/api-reference/images, as in :mod:`.openai`;
LiteLLM's proxy serves ``/v1/images/generations`` and ``/v1/images/edits`` the same way
(https://docs.litellm.ai/docs/image_edits), as does vLLM-Omni
(https://docs.vllm.ai/projects/vllm-omni/en/latest/serving/image_edit_api/).
"""

from __future__ import annotations

from typing import Any, ClassVar, Literal

from pydantic import BaseModel, Field

from ..config import BackendConfig
from ..errors import InvalidRequest, ProviderError, Unsupported
from ..types import Capabilities, GenerationRequest, ModelInfo
from .openai import OpenAIProvider, OpenAISettings
from .openai.families import MODEL_FIELDS, Family


class OpenAICompatibleSettings(OpenAISettings):
    """Settings of an ``openai_compatible`` provider: those of ``openai`` (model fields are
    sent whenever set, whatever the model) plus the server's limits. Sizes in pixels."""

    model: str | None = Field(None, description="model name sent as `model`; null sends none (the server's default)")
    models: list[str] = Field(default_factory=list,
                              description="model names to offer when the server has no GET /models")
    response_format: Literal["b64_json", "url"] | None = Field(
        "b64_json", description="sent as response_format: b64_json or url (null: not sent)")
    max_size: int = Field(2048, ge=64, le=16384, description="largest width or height the server takes, pixels")
    max_n: int = Field(4, ge=1, le=64, description="most images per request")
    edits: bool = Field(False, description="the server serves POST /images/edits (img2img and inpaint)")
    negative_prompt_separator: str | None = Field(
        None, min_length=1, description="joins prompt and negative prompt (LocalAI: |); null drops negative prompts")


class OpenAICompatibleProvider(OpenAIProvider):
    """Adapter for servers that speak the OpenAI Images API (config type
    ``openai_compatible``). A backend URL is required; ``credentials.api_key`` is optional."""

    type: ClassVar[str] = "openai_compatible"
    credential_fields: ClassVar[dict[str, bool]] = {"api_key": False}
    Settings: ClassVar[type[BaseModel]] = OpenAICompatibleSettings
    needs_backend: ClassVar[bool] = True
    default_url: ClassVar[str | None] = None
    display_name: ClassVar[str] = "this OpenAI-compatible server"

    def family(self, model: str | None) -> Family:
        """One rule for every model: the server's limits from the settings, every field sent."""
        s = self.settings
        return Family("openai-compatible", None, s.max_size, s.max_n, edits=s.edits, img2img=s.edits,
                      fields=frozenset(MODEL_FIELDS))

    def caps_for(self, family: Family) -> Capabilities:
        """The OpenAI capabilities of ``family``, with a negative prompt when a separator is set."""
        caps = super().caps_for(family)
        return caps.model_copy(update={"negative_prompt": self.settings.negative_prompt_separator is not None})

    def size_field(self, request: GenerationRequest, model: str | None) -> str | None:
        """``WxH`` of the request (or ``extra.size``), each side at most ``max_size``.

        Raises:
            InvalidRequest: a side over ``max_size`` (``width``/``height``) or a malformed
                ``extra.size``.
        """
        explicit = request.extra.get("size")
        text = str(explicit).strip().lower() if explicit is not None else f"{request.width}x{request.height}"
        if text == "auto":
            return text
        w, sep, h = text.partition("x")
        if not (sep and w.isdigit() and h.isdigit()):
            raise InvalidRequest(f"size {text!r} is not WIDTHxHEIGHT or auto", field="extra.size")
        limit = self.settings.max_size
        for name, side in (("width", int(w)), ("height", int(h))):
            if side > limit:
                raise InvalidRequest(f"{name} {side} is over this server's {limit} pixels (setting max_size)",
                                     field=name if explicit is None else "extra.size")
        return text

    def prompt_text(self, request: GenerationRequest) -> str:
        """``prompt``, with ``<separator><negative prompt>`` appended when both are set."""
        sep = self.settings.negative_prompt_separator
        if sep and request.negative_prompt:
            return f"{request.prompt}{sep}{request.negative_prompt}"
        return request.prompt

    def keep_model(self, model_id: str) -> bool:
        """Every model the server lists (its names are its own)."""
        return True

    def key_headers(self) -> dict[str, str]:
        """``Authorization: Bearer`` when ``credentials.api_key`` is set, else nothing (local
        servers take no key)."""
        secret = self.config.credentials.get("api_key")
        key = secret.get_secret_value().strip() if secret is not None else ""
        return {"Authorization": f"Bearer {key}"} if key else {}

    def _configured(self, backend: BackendConfig | None) -> list[ModelInfo]:
        return [ModelInfo(id=m, name=m, kind="model", provider=self.id, backend=backend.label if backend else None,
                          details={"source": "settings"}) for m in self.settings.models]

    async def list_models(self, backend: BackendConfig | None = None) -> list[ModelInfo]:
        """``GET {base}/models`` when it answers with models, else the ``models`` setting.

        Raises:
            ProviderError: the server cannot be asked and no ``models`` are configured.
        """
        backend = backend or self.backends[0]
        try:
            listed = await super().list_models(backend)
        except (ProviderError, Unsupported):
            if self.settings.models:
                return self._configured(backend)
            raise
        return listed or self._configured(backend)

    async def health_details(self, backend: BackendConfig | None) -> dict[str, Any]:
        """GET ``{base}/models``; a server without that route (404) is reachable too."""
        try:
            return await super().health_details(backend)
        except Unsupported:
            return {"models_route": False, "configured_models": len(self.settings.models)}
