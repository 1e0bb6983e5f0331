"""Settings from the environment and the provider configuration file.

Two layers:

* :class:`Settings` (pydantic-settings, env prefix ``IMAGE_STUDIO_``): where data lives, the
  database URL, the queue kind, the listen address, the secret key, the config file path.
* :class:`StudioConfig`: the provider schema, kept from the seed projects::

      default_provider: comfy
      fallback_chain: [comfy, a1111]
      providers:
        comfy:
          type: comfyui
          enabled: true
          credentials: {}
          settings: {workflow: weightfree}
          backends: [{url: "http://127.0.0.1:8188"}]
          concurrency: 1
          timeout: 600
      api_keys:
        - {key: "${STUDIO_ADMIN_KEY}", role: admin, owner: alice}

Sources, later wins: defaults, the YAML file (``IMAGE_STUDIO_CONFIG``), environment, and what
an admin saved in the settings panel (stored in the database).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    """Process settings from ``IMAGE_STUDIO_*`` environment variables.

    ``data_dir`` holds the SQLite database (``image_studio.db``) and the assets;
    ``database_url`` overrides the database (``postgresql+psycopg://...`` when scaled out);
    ``queue`` is ``embedded`` (asyncio workers in-process) unless set explicitly;
    ``secret_key`` encrypts stored credentials (else Open WebUI's ``WEBUI_SECRET_KEY``);
    ``job_timeout`` and ``wait_max`` are seconds; ``workers`` the number of in-process runners.
    """

    model_config = SettingsConfigDict(env_prefix="IMAGE_STUDIO_", extra="ignore")

    data_dir: Path = Path("./data")
    database_url: str | None = None
    config: Path | None = None
    queue: Literal["embedded", "procrastinate"] = "embedded"
    host: str = "127.0.0.1"
    port: int = 8765
    secret_key: SecretStr | None = None
    workers: int = 32
    job_timeout: float = 900.0
    wait_max: float = 300.0
    http_timeout: float = 30.0
    log_level: str = "INFO"

    @property
    def resolved_database_url(self) -> str:
        """The SQLAlchemy async URL: ``database_url`` if set, else SQLite in ``data_dir``."""
        if self.database_url:
            return self.database_url
        return f"sqlite+aiosqlite:///{(self.data_dir / 'image_studio.db').resolve()}"


class BackendConfig(BaseModel):
    """One server of a provider. ``url`` is its base URL; ``name`` defaults to the URL;
    ``concurrency`` jobs in flight at once on it (None: the provider's); ``weight`` is unused
    for now and kept for balancing."""

    model_config = ConfigDict(extra="forbid")

    url: str
    name: str | None = None
    concurrency: int | None = Field(default=None, ge=1, le=256)
    username: str | None = None
    password: SecretStr | None = None
    headers: dict[str, str] = Field(default_factory=dict)

    @property
    def label(self) -> str:
        return self.name or self.url

    @field_validator("url")
    @classmethod
    def _strip_url(cls, v: str) -> str:
        v = v.strip().rstrip("/")
        if not v.startswith(("http://", "https://")):
            raise ValueError("must start with http:// or https://")
        return v


class ProviderConfig(BaseModel):
    """One configured provider. ``type`` names the adapter (``comfyui``, ``automatic1111``,
    ``placeholder``...); ``credentials`` hold secrets (encrypted at rest, masked in
    responses); ``settings`` are validated by the adapter's own settings model;
    ``timeout`` is seconds per attempt; ``concurrency`` jobs per backend."""

    model_config = ConfigDict(extra="forbid")

    type: str
    enabled: bool = True
    credentials: dict[str, SecretStr] = Field(default_factory=dict)
    settings: dict[str, Any] = Field(default_factory=dict)
    backends: list[BackendConfig] = Field(default_factory=list)
    concurrency: int = Field(default=1, ge=1, le=256)
    timeout: float = Field(default=600.0, gt=0)
    label: str | None = None


class ApiKey(BaseModel):
    """A standalone API key: callers send ``Authorization: Bearer <key>`` or ``X-API-Key``."""

    model_config = ConfigDict(extra="forbid")

    key: SecretStr
    role: Literal["admin", "user"] = "user"
    owner: str

    @field_validator("key")
    @classmethod
    def _key_len(cls, v: SecretStr) -> SecretStr:
        if len(v.get_secret_value()) < 8:
            raise ValueError("an API key needs at least 8 characters")
        return v


class StudioConfig(BaseModel):
    """The provider configuration: the seed schema plus API keys."""

    model_config = ConfigDict(extra="forbid")

    default_provider: str | None = None
    fallback_chain: list[str] = Field(default_factory=list)
    providers: dict[str, ProviderConfig] = Field(default_factory=dict)
    api_keys: list[ApiKey] = Field(default_factory=list)
