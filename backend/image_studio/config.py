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

Loading: :func:`load_config_file` reads one YAML or JSON file (``${VAR}`` and
``${VAR:-default}`` expanded in string values, ``$${`` for a literal ``${``) and
:func:`load_config` merges every source (rules in its docstring). Errors are
:class:`~image_studio.errors.ConfigError` with ``field`` the dotted path at fault
(``providers.comfy.backends.0.url``) and the source (file, variable) named. Encryption of
secrets at rest, masking in responses and admin updates are in :mod:`image_studio.crypto`.
"""

from __future__ import annotations

import copy
import json
import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from .errors import ConfigError

if TYPE_CHECKING:
    from .crypto import SecretBox


class Settings(BaseSettings):
    """Process settings from ``IMAGE_STUDIO_*`` environment variables.

    ``data_dir`` holds the SQLite database (``image_studio.db``) and the assets;
    ``database_url`` overrides the database (``postgresql+psycopg://...`` when scaled out);
    ``queue`` is ``embedded`` (asyncio workers in-process) unless set explicitly;
    ``secret_key`` encrypts stored credentials (else Open WebUI's ``WEBUI_SECRET_KEY``);
    ``secret_key_old`` lists earlier keys, comma-separated, for rotation;
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
    # Earlier secret keys, comma-separated, still accepted for decryption (key rotation).
    secret_key_old: str | None = Field(default=None, repr=False)
    workers: int = 32
    job_timeout: float = 900.0
    wait_max: float = 300.0
    queue_ttl: float = 86400.0  # seconds a job may wait queued before it expires
    fsync: bool = False  # fsync asset files (survive power loss, at about 3 ms a file)
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
        """``name``, else the URL without any ``user:password@`` (labels appear in job
        records, logs and ``GET /providers``, so they never carry credentials)."""
        if self.name:
            return self.name
        scheme, sep, rest = self.url.partition("://")
        host, slash, path = rest.partition("/")
        return f"{scheme}{sep}{host.rpartition('@')[2]}{slash}{path}"

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
    ``timeout`` is seconds per attempt; ``concurrency`` jobs per backend;
    ``fallback_on_content_rejected`` lets a refusal fall back to the next provider."""

    model_config = ConfigDict(extra="forbid")

    type: str
    enabled: bool = True
    credentials: dict[str, SecretStr] = Field(default_factory=dict)
    settings: dict[str, Any] = Field(default_factory=dict)
    backends: list[BackendConfig] = Field(default_factory=list)
    concurrency: int = Field(default=1, ge=1, le=256)
    timeout: float = Field(default=600.0, gt=0)
    label: str | None = None
    fallback_on_content_rejected: bool = False
    """When this provider's safety system refuses a request, try the next provider in the
    chain instead of failing the job (off by default: a refusal usually applies everywhere)."""


class ApiKey(BaseModel):
    """A standalone API key: callers send ``Authorization: Bearer <key>`` or ``X-API-Key``."""

    model_config = ConfigDict(extra="forbid")

    key: SecretStr
    role: Literal["admin", "user", "service"] = "user"
    """``service``: a key for a trusted front end (Open WebUI calling the OpenAI-compatible
    facade): it acts as the user named in Open WebUI's forwarded user headers, else as
    ``owner`` (see :mod:`image_studio.api.openai_facade`)."""
    owner: str

    @field_validator("key")
    @classmethod
    def _key_len(cls, v: SecretStr) -> SecretStr:
        if len(v.get_secret_value()) < 8:
            raise ValueError("an API key needs at least 8 characters")
        return v


_FACADE_UNSET_FIELDS = frozenset({"prompt", "init_image", "mask", "provider", "workflow", "model", "params"})
"""GenerationRequest fields a facade route's ``defaults`` may not set (the route has its own
``provider``, ``workflow``, ``model`` and ``params``; inputs come from the request)."""


class FacadeModel(BaseModel):
    """Where one model name of the OpenAI-compatible facade goes.

    ``provider`` None runs the default provider and its fallback chain; ``workflow`` names a
    ComfyUI workflow (shipped or saved); ``model`` is the provider-side model or checkpoint
    (None: the provider's default; the OpenAI model name is never passed on); ``params`` sets
    the workflow's exposed parameters; ``defaults`` gives any other GenerationRequest field
    (``steps``, ``cfg_scale``, ``negative_prompt``, ``width`` ...) used when the request body
    has none; ``openai_options`` passes OpenAI's own ``quality``, ``style``, ``background``,
    ``output_format``, ``output_compression``, ``moderation``, ``input_fidelity`` and ``user``
    body fields on in ``request.extra`` (for an ``openai`` or ``openai_compatible`` provider;
    otherwise they are ignored).
    """

    model_config = ConfigDict(extra="forbid")

    provider: str | None = None
    workflow: str | None = None
    model: str | None = None
    params: dict[str, Any] = Field(default_factory=dict)
    defaults: dict[str, Any] = Field(default_factory=dict)
    openai_options: bool = False

    @field_validator("defaults")
    @classmethod
    def _known_defaults(cls, v: dict[str, Any]) -> dict[str, Any]:
        from .types import GenerationRequest

        bad = sorted(k for k in v if k not in GenerationRequest.model_fields or k in _FACADE_UNSET_FIELDS)
        if bad:
            raise ValueError(f"{bad[0]!r} is not a generation request field that a default may set")
        return v


class OpenAIFacadeConfig(BaseModel):
    """The OpenAI-compatible facade's model names: ``models`` maps a name (what a client sends
    as ``model``, e.g. Open WebUI's ``dall-e-2``) to a :class:`FacadeModel`; ``default`` is
    used for every name that is neither mapped, nor a provider id, nor a workflow name."""

    model_config = ConfigDict(extra="forbid")

    models: dict[str, FacadeModel] = Field(default_factory=dict)
    default: FacadeModel = Field(default_factory=FacadeModel)


class PromptSettings(BaseModel):
    """Prompt limits and the LLM that shortens long prompts (see :mod:`image_studio.prompts`).

    ``llm_url`` is an OpenAI-compatible API root (Ollama's is ``http://127.0.0.1:11434/v1``);
    ``timeout`` seconds for one shortening call; prompts over ``soft_limit`` characters are
    shortened when ``optimize`` is on, prompts over ``hard_limit`` refused (HTTP 400)."""

    model_config = ConfigDict(extra="forbid")

    optimize: bool = True
    llm_url: str = "http://127.0.0.1:11434/v1"
    model: str = "llama3.2"
    api_key: SecretStr | None = None
    timeout: float = Field(default=30.0, gt=0, le=600)
    soft_limit: int = Field(default=3_000, ge=100, le=10_000)
    hard_limit: int = Field(default=10_000, ge=100, le=10_000)


class StudioConfig(BaseModel):
    """The provider configuration: the seed schema plus API keys and prompt settings."""

    model_config = ConfigDict(extra="forbid")

    default_provider: str | None = None
    fallback_chain: list[str] = Field(default_factory=list)
    providers: dict[str, ProviderConfig] = Field(default_factory=dict)
    api_keys: list[ApiKey] = Field(default_factory=list)
    openai_facade: OpenAIFacadeConfig = Field(default_factory=OpenAIFacadeConfig)
    prompts: PromptSettings = Field(default_factory=PromptSettings)


# --------------------------------------------------------------------------- loading

FILE_ENV = "IMAGE_STUDIO_CONFIG"
ENV_DEFAULT_PROVIDER = "IMAGE_STUDIO_DEFAULT_PROVIDER"
ENV_FALLBACK_CHAIN = "IMAGE_STUDIO_FALLBACK_CHAIN"
ENV_PROVIDERS_JSON = "IMAGE_STUDIO_PROVIDERS_JSON"
SAVED_SOURCE = "saved settings"
UPDATE_SOURCE = "config update"

# "$${" is the escape for a literal "${"; otherwise "${" must open "${NAME}" or "${NAME:-default}".
_REF = re.compile(r"\$\$\{|\$\{(?:([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\})?")


def _join(path: str, key: object) -> str:
    return f"{path}.{key}" if path else str(key)


def expand_env(value: str, env: Mapping[str, str], *, path: str = "", source: str | None = None) -> str:
    """``value`` with ``${VAR}`` and ``${VAR:-default}`` replaced from ``env``.

    Shell rules: ``${VAR:-default}`` takes the default when VAR is unset or empty; ``${VAR}``
    with VAR set to "" gives "". ``$${`` stands for a literal ``${``. A default cannot hold
    ``}``. Replaced text is not expanded again.

    Raises:
        ConfigError: VAR unset with no default, or a ``${`` that opens no valid reference;
            ``field`` is ``path`` (the dotted path of the value) and ``source`` the file.
    """

    def repl(m: re.Match[str]) -> str:
        if m.group(0) == "$${":
            return "${"
        name, default = m.group(1), m.group(2)
        if name is None:
            raise ConfigError(f"{path or 'value'}: malformed '${{' reference (write '$${{' for a literal '${{')",
                              field=path or None, source=source)
        found = env.get(name)
        if default is not None and not found:
            return default
        if found is None:
            raise ConfigError(f"environment variable {name} is not set and {path or 'the value'} gives no "
                              f"default (write ${{{name}:-default}})", field=path or None, source=source)
        return found

    return _REF.sub(repl, value)


def _expand_tree(node: Any, env: Mapping[str, str], path: str, source: str) -> Any:
    if isinstance(node, str):
        return expand_env(node, env, path=path, source=source)
    if isinstance(node, dict):
        return {k: _expand_tree(v, env, _join(path, k), source) for k, v in node.items()}
    if isinstance(node, list):
        return [_expand_tree(v, env, _join(path, i), source) for i, v in enumerate(node)]
    return node


def read_config_data(path: Path, env: Mapping[str, str] | None = None) -> dict[str, Any]:
    """The raw mapping in a YAML (``yaml.safe_load``) or JSON (``.json``) file, with every
    string value expanded by :func:`expand_env` (keys are left alone). An empty file is ``{}``.
    Not validated.

    Raises:
        ConfigError: the file is missing or unreadable (field ``config``), does not parse,
            is not a mapping at the top, or names an unset variable (source: the file).
    """
    path = Path(path)
    source = str(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"cannot read the config file: {exc.strerror or exc}", field="config", source=source) from exc
    try:
        data = json.loads(text) if path.suffix.lower() == ".json" else yaml.safe_load(text)
    except (json.JSONDecodeError, yaml.YAMLError) as exc:
        raise ConfigError(f"the config file does not parse: {exc}", source=source) from exc
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"the top level must be a mapping, not {type(data).__name__}", source=source)
    return _expand_tree(data, os.environ if env is None else env, "", source)


def _loc(loc: tuple[Any, ...]) -> str:
    return ".".join(str(p) for p in loc)


def validate_config(data: Mapping[str, Any], source: str) -> StudioConfig:
    """``data`` validated as a :class:`StudioConfig` (references not checked).

    Raises:
        ConfigError: ``field`` is the dotted path of the first error (e.g.
            ``providers.comfy.backends.0.url``); the message names ``source`` and every
            pydantic message. Input values are never quoted (they may be secrets).
    """
    try:
        return StudioConfig.model_validate(data)
    except ValidationError as exc:
        errors = exc.errors(include_url=False, include_input=False)
        detail = "; ".join(f"{_loc(e['loc']) or '(top level)'}: {e['msg']}" for e in errors)
        raise ConfigError(f"{source}: invalid configuration: {detail}",
                          field=_loc(errors[0]["loc"]) or None, source=source) from None


def check_references(cfg: StudioConfig, *, source: str | None = None,
                     sources: Mapping[str, str] | None = None) -> None:
    """Check that ``default_provider``, every ``fallback_chain`` entry and every
    ``openai_facade`` route's ``provider`` is a configured provider id. ``sources`` maps a
    top-level key to where it came from, else ``source``.

    Raises:
        ConfigError: field ``default_provider``, ``fallback_chain.<index>`` or
            ``openai_facade.<default|models.<name>>.provider``.
    """
    known = ", ".join(sorted(cfg.providers)) or "none"
    where = sources or {}
    if cfg.default_provider is not None and cfg.default_provider not in cfg.providers:
        raise ConfigError(f"default_provider {cfg.default_provider!r} is not a configured provider "
                          f"(configured: {known})", field="default_provider",
                          source=where.get("default_provider", source))
    for i, pid in enumerate(cfg.fallback_chain):
        if pid not in cfg.providers:
            raise ConfigError(f"fallback_chain entry {pid!r} is not a configured provider (configured: {known})",
                              field=f"fallback_chain.{i}", source=where.get("fallback_chain", source))
    facade = cfg.openai_facade
    for path, route in [("default", facade.default), *((f"models.{k}", m) for k, m in facade.models.items())]:
        if route.provider is not None and route.provider not in cfg.providers:
            raise ConfigError(f"openai_facade.{path}.provider {route.provider!r} is not a configured provider "
                              f"(configured: {known})", field=f"openai_facade.{path}.provider",
                              source=where.get("openai_facade", source))


def load_config_file(path: Path, *, env: Mapping[str, str] | None = None) -> StudioConfig:
    """The :class:`StudioConfig` in a YAML or JSON file (see :func:`read_config_data`),
    validated and with its references checked. Provider types are not checked here (the
    registry does that).

    Raises:
        ConfigError: from :func:`read_config_data`, :func:`validate_config` or
            :func:`check_references`; the message names the file.
    """
    source = str(path)
    cfg = validate_config(read_config_data(Path(path), env), source)
    check_references(cfg, source=source)
    return cfg


def _env_layer(env: Mapping[str, str]) -> dict[str, Any]:
    layer: dict[str, Any] = {}
    if default := env.get(ENV_DEFAULT_PROVIDER, "").strip():
        layer["default_provider"] = default
    if chain := env.get(ENV_FALLBACK_CHAIN, "").strip():
        layer["fallback_chain"] = [p.strip() for p in chain.split(",") if p.strip()]
    if raw := env.get(ENV_PROVIDERS_JSON, "").strip():
        try:
            providers = json.loads(raw)
        except json.JSONDecodeError as exc:
            raise ConfigError(f"not valid JSON: {exc}", field="providers", source=ENV_PROVIDERS_JSON) from None
        if not isinstance(providers, dict) or not all(isinstance(v, dict) for v in providers.values()):
            raise ConfigError("must be a JSON object mapping provider ids to provider objects",
                              field="providers", source=ENV_PROVIDERS_JSON)
        layer["providers"] = providers
    return layer


def _deep_merge(base: Mapping[str, Any], over: Mapping[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for key, value in over.items():
        if isinstance(value, Mapping) and isinstance(out.get(key), Mapping):
            out[key] = _deep_merge(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


def load_config(settings: Settings, saved: Mapping[str, Any] | None = None, *,
                env: Mapping[str, str] | None = None, box: SecretBox | None = None) -> StudioConfig:
    """The effective :class:`StudioConfig` from every source; later sources win:

    1. defaults (an empty config: no providers);
    2. the file ``settings.config``, else ``$IMAGE_STUDIO_CONFIG`` (YAML or JSON, ``${VAR}``
       expanded, see :func:`read_config_data`);
    3. the environment: ``IMAGE_STUDIO_DEFAULT_PROVIDER`` (an id) and
       ``IMAGE_STUDIO_FALLBACK_CHAIN`` (comma-separated ids) replace those keys;
       ``IMAGE_STUDIO_PROVIDERS_JSON`` (a JSON object ``{id: provider}``) is deep-merged over
       ``providers``: mappings merge key by key at every depth (so
       ``{"openai": {"credentials": {"api_key": "..."}}}`` adds a key to the file's provider),
       lists and scalars replace; a new id must be a whole provider. Empty variables are ignored;
    4. ``saved``, what an admin saved in the settings panel (a dict in the database, as from
       :func:`config_to_storable`; ``enc:v1:`` values are decrypted with ``box``, else with
       ``SecretBox.from_settings(settings)``): each top-level key present replaces the one
       before, except ``providers``, where a saved provider replaces the provider of the
       same id as a whole object and other ids are kept.

    The result is validated and its references checked (see :func:`check_references`).

    Args:
        env: the environment (default ``os.environ``).

    Raises:
        ConfigError: naming the source at fault (the file, the variable, ``saved settings``)
            and the field.
    """
    env = os.environ if env is None else env
    data: dict[str, Any] = {}
    origin: dict[str, str] = {}
    path = settings.config or (Path(env[FILE_ENV]) if env.get(FILE_ENV, "").strip() else None)
    if path is not None:
        data = read_config_data(path, env)
        validate_config(data, str(path))
        origin.update(dict.fromkeys(data, str(path)))
    layer = _env_layer(env)
    for key, value in layer.items():
        data[key] = _deep_merge(data.get("providers") or {}, value) if key == "providers" else value
        origin[key] = {"providers": ENV_PROVIDERS_JSON, "default_provider": ENV_DEFAULT_PROVIDER,
                       "fallback_chain": ENV_FALLBACK_CHAIN}[key]
    if layer:
        validate_config(data, "environment (" + ", ".join(origin[k] for k in layer) + ")")
    if saved:
        from .crypto import SecretBox, decrypt_secrets  # crypto imports this module

        saved = decrypt_secrets(saved, lambda: box or SecretBox.from_settings(settings, env))
        validate_config(saved, SAVED_SOURCE)
        for key, value in saved.items():
            data[key] = {**(data.get("providers") or {}), **value} if key == "providers" else value
            origin[key] = SAVED_SOURCE
    cfg = validate_config(data, "merged configuration")
    check_references(cfg, sources=origin, source="merged configuration")
    return cfg
