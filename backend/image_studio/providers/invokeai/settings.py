"""Settings of the InvokeAI provider (their JSON Schema is the admin panel's form)."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


class InvokeAISettings(BaseModel):
    """Settings of an InvokeAI provider. Times in seconds, sizes in pixels."""

    model_config = ConfigDict(extra="forbid")

    model: str | None = Field(None, description="main model key or name used when a request names none "
                                                "(None: the first SD1/SD2/SDXL main model installed)")
    board: str | None = Field(None, description="board name to put outputs on; created when missing "
                                                "(None: uncategorized)")
    queue_id: str = Field("default", min_length=1, description="InvokeAI session queue id")
    scheduler: str = Field("dpmpp_3m_k", description="scheduler when a request names none")
    steps: int = Field(30, ge=1, le=1000, description="denoising steps when a request names none")
    cfg_scale: float = Field(7.5, ge=0, le=100, description="CFG scale when a request names none")
    denoising_strength: float = Field(0.75, ge=0, le=1, description="img2img strength when a request names none")
    fp32_vae: bool = Field(False, description="decode and encode latents at full precision")
    cpu_noise: bool = Field(True, description="make the initial noise on the CPU (same seed, same image on any GPU)")
    poll_interval: float = Field(0.5, ge=0.05, le=30, description="seconds between queue item polls")
    request_timeout: float = Field(15.0, gt=0, le=300, description="seconds for one API call")
    health_timeout: float = Field(5.0, gt=0, le=60, description="seconds for the health probe")
    max_size: int = Field(2048, ge=64, le=16384, description="largest width or height, pixels")
    max_n: int = Field(8, ge=1, le=64, description="most images (queue items) per request")
    auth_header: str = Field("Authorization", min_length=1,
                             description="header that carries credentials.token (multi-user mode or a proxy)")
    auth_scheme: str = Field("Bearer", description="prefix of the token in that header ('' for the bare token)")
