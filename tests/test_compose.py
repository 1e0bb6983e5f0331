"""Static checks of the development stack: docker-compose.dev.yaml, .env.dev and docker/.

No Docker engine runs on the development machines, so the stack is checked without one:

* the compose file against the Compose Specification JSON schema, offline: the copy that
  check-jsonschema vendors (``check_jsonschema/builtin_schemas/vendor/compose-spec.json``,
  compose-spec's ``schema/compose-spec.json`` by way of SchemaStore), once with ``jsonschema``'s
  Draft 2020-12 validator and once through check-jsonschema's own command line
  (``--builtin-schema vendor.compose-spec``). The schema applies to the file before
  interpolation, as Compose validates it;
* interpolation, following the Compose Specification's rules (``$$`` is a literal ``$``;
  ``${VAR}``, ``${VAR:-default}``, ``${VAR:?error}`` and friends): every variable used is
  defined in .env.dev, every variable there is used and has a comment line above it;
* the wiring: the studio facade's URL, the backend URLs and the database URL point at the
  services and ports that the compose file and the Dockerfiles actually set up, and the
  studio's own settings and provider file load with the values of .env.dev.
"""

from __future__ import annotations

import importlib.resources
import json
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import jsonschema
import pytest
import yaml

from image_studio.api.schemas import API_PREFIX
from image_studio.config import (ENV_DEFAULT_PROVIDER, ENV_FALLBACK_CHAIN, ENV_PROVIDERS_JSON, FILE_ENV, Settings,
                                 load_config_file)
from image_studio.types import GenerationRequest

ROOT = Path(__file__).resolve().parents[1]
COMPOSE = ROOT / "docker-compose.dev.yaml"
ENV_FILE = ROOT / ".env.dev"
SERVICES = {"open-webui", "comfyui", "automatic1111", "ollama", "postgres", "redis"}

# Compose interpolation: "$$", "${NAME}", "${NAME<op>arg}" with op in :- - :? ? :+ +, "$NAME".
_INTERP = re.compile(r"\$(?:(?P<esc>\$)|\{(?P<braced>[A-Za-z_][A-Za-z0-9_]*)(?:(?P<op>:?[-?+])(?P<arg>[^}]*))?\}"
                     r"|(?P<bare>[A-Za-z_][A-Za-z0-9_]*)|(?P<bad>))")
_ENV_LINE = re.compile(r"^(?P<key>[A-Za-z_][A-Za-z0-9_]*)=(?P<value>.*)$")


class _StrictLoader(yaml.SafeLoader):
    """SafeLoader that refuses duplicate mapping keys, as Compose's YAML parser does."""


def _mapping_without_duplicates(loader: yaml.SafeLoader, node: yaml.MappingNode) -> dict[Any, Any]:
    seen: set[Any] = set()
    for key_node, _ in node.value:
        key = loader.construct_object(key_node, deep=True)
        if key in seen:
            raise yaml.constructor.ConstructorError(None, None, f"duplicate key {key!r}", key_node.start_mark)
        seen.add(key)
    return loader.construct_mapping(node, deep=True)


_StrictLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _mapping_without_duplicates)


def load_yaml(text: str) -> Any:
    """``text`` parsed as YAML; duplicate keys raise ``yaml.constructor.ConstructorError``."""
    return yaml.load(text, Loader=_StrictLoader)  # noqa: S506 - a SafeLoader subclass


def parse_env_file(path: Path) -> dict[str, dict[str, Any]]:
    """The variables of a Compose env file, restricted to the plain subset both Compose and
    this parser read the same way: ``KEY=value`` lines, ``#`` comment lines and blank lines; a
    value in single quotes is literal, an unquoted one may not hold ``$``, quotes or ``#``.

    Returns ``{name: {"value": str, "line": int, "documented": bool}}``, where ``documented``
    says that the line right above is a comment.

    Raises:
        AssertionError: a line outside that subset, or a variable defined twice (line named).
    """
    out: dict[str, dict[str, Any]] = {}
    previous = ""
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        stripped = line.strip()
        if stripped and not stripped.startswith("#"):
            m = _ENV_LINE.match(line)
            assert m, f"{path.name}:{number}: not a KEY=value line: {line!r}"
            key, value = m["key"], m["value"]
            assert key not in out, f"{path.name}:{number}: {key} is defined twice"
            if len(value) >= 2 and value[0] == value[-1] == "'":
                value = value[1:-1]
            else:
                assert not re.search(r"[$'\"#\s]", value), f"{path.name}:{number}: quote {key}'s value in '...'"
            out[key] = {"value": value, "line": number, "documented": previous.startswith("#")}
        previous = stripped
    return out


def variables(text: str) -> set[str]:
    """Names that one string interpolates (Compose rules; ``$$`` names nothing).

    Raises:
        AssertionError: a ``$`` that starts no valid reference (Compose refuses the file).
    """
    names = set()
    for m in _INTERP.finditer(text):
        assert m["bad"] is None, f"invalid interpolation in {text!r} (write $$ for a literal $)"
        if m["braced"] or m["bare"]:
            names.add(m["braced"] or m["bare"])
    return names


def interpolate(node: Any, env: dict[str, str]) -> Any:
    """``node`` with every string value interpolated from ``env`` as Compose would.

    Raises:
        AssertionError: a ``${VAR:?err}`` / ``${VAR?err}`` whose variable is unset (or empty).
    """
    if isinstance(node, dict):
        return {k: interpolate(v, env) for k, v in node.items()}
    if isinstance(node, list):
        return [interpolate(v, env) for v in node]
    if not isinstance(node, str):
        return node

    def one(m: re.Match[str]) -> str:
        if m["esc"]:
            return "$"
        name, op, arg = m["braced"] or m["bare"], m["op"], m["arg"]
        value, empty_counts = env.get(name), bool(op and op.startswith(":"))
        missing = value is None or (empty_counts and value == "")
        if op in (":?", "?"):
            assert not missing, f"required variable {name} is missing: {arg}"
        if op in (":-", "-") and missing:
            return arg
        if op in (":+", "+"):
            return "" if missing else arg
        return value or ""

    return _INTERP.sub(one, node)


def strings(node: Any) -> list[str]:
    """Every string value in a parsed YAML tree (mapping keys excluded)."""
    if isinstance(node, dict):
        return [s for v in node.values() for s in strings(v)]
    if isinstance(node, list):
        return [s for v in node for s in strings(v)]
    return [node] if isinstance(node, str) else []


@pytest.fixture(scope="module")
def raw() -> dict[str, Any]:
    return load_yaml(COMPOSE.read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def dotenv() -> dict[str, dict[str, Any]]:
    return parse_env_file(ENV_FILE)


@pytest.fixture(scope="module")
def env(dotenv: dict[str, dict[str, Any]]) -> dict[str, str]:
    return {k: v["value"] for k, v in dotenv.items()}


@pytest.fixture(scope="module")
def stack(raw: dict[str, Any], env: dict[str, str]) -> dict[str, Any]:
    """The compose file as Compose sees it after interpolation with .env.dev."""
    return interpolate(raw, env)


@pytest.fixture(scope="module")
def validator() -> jsonschema.protocols.Validator:
    schema_file = importlib.resources.files("check_jsonschema.builtin_schemas.vendor") / "compose-spec.json"
    schema = json.loads(schema_file.read_text(encoding="utf-8"))
    cls = jsonschema.validators.validator_for(schema)
    cls.check_schema(schema)
    return cls(schema, format_checker=cls.FORMAT_CHECKER)


def schema_errors(validator: jsonschema.protocols.Validator, doc: Any) -> list[str]:
    return [f"{'/'.join(map(str, e.absolute_path)) or '(top)'}: {e.message}" for e in validator.iter_errors(doc)]


# ------------------------------------------------------------------ the schema


def test_compose_file_matches_the_compose_specification(validator, raw):
    assert schema_errors(validator, raw) == []


def test_check_jsonschema_cli_accepts_the_compose_file():
    proc = subprocess.run([sys.executable, "-m", "check_jsonschema", "--builtin-schema", "vendor.compose-spec",
                           str(COMPOSE)], capture_output=True, text=True, timeout=120, check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr


@pytest.mark.parametrize("path, value", [
    (("services", "postgres", "helthcheck"), {"test": ["CMD", "true"]}),           # misspelt key
    (("services", "open-webui", "depends_on", "postgres", "condition"), "healthy"),  # unknown condition
    (("services", "redis", "healthcheck", "interval"), 5),                           # a duration is a string
    (("services", "comfyui", "ports"), "8188:8188"),                                 # a list, not a string
    (("volumes", "bad name!"), None),                                                # invalid volume name
])
def test_schema_catches_a_broken_file(validator, raw, path, value):
    broken = json.loads(json.dumps(raw))
    node = broken
    for key in path[:-1]:
        node = node[key]
    node[path[-1]] = value
    assert schema_errors(validator, broken), f"a compose file with {'.'.join(path)}={value!r} passed the schema"


def test_duplicate_keys_are_refused():
    with pytest.raises(yaml.constructor.ConstructorError, match="duplicate key 'image'"):
        load_yaml("services:\n  a:\n    image: x\n    image: y\n")


# ------------------------------------------------------------------ variables


def test_every_compose_variable_is_defined_and_documented(raw, dotenv):
    used = {name for s in strings(raw) for name in variables(s)}
    assert used, "the compose file uses no variable from .env.dev"
    assert sorted(used - dotenv.keys()) == [], "used in docker-compose.dev.yaml but not defined in .env.dev"
    undocumented = sorted(k for k, v in dotenv.items() if not v["documented"])
    assert undocumented == [], "no comment line directly above these .env.dev variables"


def test_every_env_variable_is_used(raw, dotenv):
    used = {name for s in strings(raw) for name in variables(s)}
    assert sorted(dotenv.keys() - used) == [], "defined in .env.dev but used nowhere in docker-compose.dev.yaml"


def test_interpolation_rules():
    assert variables("pg_isready -U $${POSTGRES_USER}") == set()
    assert variables("127.0.0.1:${PORT:?set it}:8080 $HOME") == {"PORT", "HOME"}
    assert interpolate("a${X:-d}b${Y-e}$$c", {"X": ""}) == "adbe$c"
    with pytest.raises(AssertionError, match="required variable PORT"):
        interpolate("${PORT:?set in .env.dev}", {"PORT": ""})
    with pytest.raises(AssertionError, match="invalid interpolation"):
        variables("cost: 5$")


def test_secrets_are_placeholders(env):
    secret = re.compile(r"KEY|PASSWORD|SECRET|TOKEN")
    for name, value in env.items():
        if secret.search(name):
            assert value.startswith("change-me"), f"{name} must be a change-me placeholder, not a real secret"
    assert urlsplit(env["DATABASE_URL"]).password == env["POSTGRES_PASSWORD"]


# ------------------------------------------------------------------ services


def _flag(command: list[str], flag: str) -> str:
    assert flag in command, f"{flag} missing from {command}"
    return command[command.index(flag) + 1]


def test_services_health_dependencies_and_volumes(stack):
    services = stack["services"]
    assert SERVICES <= services.keys()
    for name, svc in services.items():
        assert "healthcheck" in svc, f"{name} has no healthcheck"
        assert svc.get("network_mode") != "host" and not svc.get("privileged"), name
        for published in svc.get("ports", []):
            assert published.startswith("127.0.0.1:"), f"{name} publishes {published} beyond loopback"
        for dep, spec in svc.get("depends_on", {}).items():
            assert dep in services, f"{name} depends on unknown service {dep}"
            assert spec["condition"] in ("service_healthy", "service_started"), (name, dep)
    assert {d: s["condition"] for d, s in services["open-webui"]["depends_on"].items()} == {
        "postgres": "service_healthy", "redis": "service_healthy", "comfyui": "service_healthy",
        "ollama": "service_healthy", "automatic1111": "service_started"}
    declared = set(stack["volumes"])
    named = {v.split(":")[0] for svc in services.values() for v in svc.get("volumes", []) if not v.startswith(".")}
    assert named == declared, "named volumes used and declared differ"
    for svc in services.values():
        for bind in (v for v in svc.get("volumes", []) if v.startswith(".")):
            assert (ROOT / bind.split(":")[0]).is_file() and bind.endswith(":ro"), bind


def test_service_images_and_flags(stack, env):
    services = stack["services"]
    assert services["postgres"]["image"] == "postgres:16"
    assert services["redis"]["image"] == "redis:7"
    assert services["ollama"]["image"] == f"ollama/ollama:{env['OLLAMA_VERSION']}"
    comfy = services["comfyui"]["command"]
    assert (_flag(comfy, "--listen"), _flag(comfy, "--port"), _flag(comfy, "--preview-method")) == (
        "0.0.0.0", "8188", "auto")
    assert "--cpu" in comfy
    a1111 = services["automatic1111"]["command"]
    assert {"--api", "--listen"} <= set(a1111)
    assert re.fullmatch(r"0\.12\.\d+", env["OPEN_WEBUI_VERSION"])


def test_dockerfiles_match_the_compose_file(stack, env):
    for name, arg in (("open-webui", "OPEN_WEBUI_VERSION"), ("comfyui", "COMFYUI_VERSION")):
        build = stack["services"][name]["build"]
        dockerfile = ROOT / build["context"] / build["dockerfile"]
        text = dockerfile.read_text(encoding="utf-8")
        assert build["args"][arg] == env[arg]
        assert re.search(rf"^ARG {arg}={re.escape(env[arg])}$", text, re.M), f"{dockerfile.name}: default {arg}"
    owui = (ROOT / "docker/openwebui.Dockerfile").read_text(encoding="utf-8")
    assert re.search(r"^FROM ghcr\.io/open-webui/open-webui:\$\{OPEN_WEBUI_VERSION\}$", owui, re.M)
    assert "COPY --from=ui /ui ./backend/image_studio/web" in owui  # the UI, built in its own stage
    for copied in re.findall(r"^COPY (?!--from=)(.+) \S+$", owui, re.M):
        for source in copied.split():
            assert (ROOT / source).exists(), f"openwebui.Dockerfile copies missing {source}"
    assert "pip install --no-cache-dir --constraint /tmp/open-webui-pins.txt /app/image-studio" in owui
    cmd = json.loads(re.search(r"^CMD (\[.*\])$", owui, re.M).group(1))
    assert cmd[:2] == ["image-studio", "openwebui"] and _flag(cmd, "--host") == "0.0.0.0"
    container_port = stack["services"]["open-webui"]["ports"][0].rsplit(":", 1)[1]
    assert _flag(cmd, "--port") == container_port == "8080"


# ------------------------------------------------------------------ wiring


def test_facade_url_points_at_the_studio_in_the_open_webui_container(stack, env):
    owui = stack["services"]["open-webui"]
    container_port = int(owui["ports"][0].rsplit(":", 1)[1])
    for key in ("IMAGES_OPENAI_API_BASE_URL", "IMAGES_EDIT_OPENAI_API_BASE_URL"):
        url = urlsplit(owui["environment"][key])
        assert (url.scheme, url.hostname, url.port) == ("http", "localhost", container_port), key
        assert url.path == f"{API_PREFIX}/openai/v1", key
    assert env["IMAGES_EDIT_OPENAI_API_KEY"] == env["IMAGES_OPENAI_API_KEY"]
    assert env["IMAGE_GENERATION_ENGINE"] == env["IMAGE_EDIT_ENGINE"] == "openai"
    assert env["ENABLE_IMAGE_GENERATION"] == env["ENABLE_IMAGE_EDIT"] == "true"
    health = owui["healthcheck"]["test"][1]
    assert f"http://127.0.0.1:{container_port}{API_PREFIX}/health" in health
    params = json.loads(env["IMAGES_OPENAI_PARAMS"])
    assert isinstance(params, dict) and params.keys() <= GenerationRequest.model_fields.keys()


def test_backend_and_database_urls_point_at_their_services(stack, env):
    services = stack["services"]
    listens = {"comfyui": int(_flag(services["comfyui"]["command"], "--port")),
               "automatic1111": int(_flag(services["automatic1111"]["command"], "--port")),
               "ollama": 11434, "redis": 6379, "postgres": 5432}
    urls = {"COMFYUI_URL": "comfyui", "AUTOMATIC1111_URL": "automatic1111", "OLLAMA_BASE_URL": "ollama",
            "REDIS_URL": "redis", "DATABASE_URL": "postgres"}
    for key, service in urls.items():
        url = urlsplit(env[key])
        assert (url.hostname, url.port) == (service, listens[service]), key
        assert env[key] == services["open-webui"]["environment"][key]
    for service in ("comfyui", "automatic1111", "ollama"):
        assert services[service]["ports"][0].endswith(f":{listens[service]}"), service
    db = urlsplit(env["DATABASE_URL"])
    assert db.scheme == "postgresql"
    assert (db.username, db.password, db.path.lstrip("/")) == (
        env["POSTGRES_USER"], env["POSTGRES_PASSWORD"], env["POSTGRES_DB"])


def test_studio_settings_load_from_env_file(env, monkeypatch):
    studio_vars = {k: v for k, v in env.items() if k.startswith("IMAGE_STUDIO_")}
    known = {f"IMAGE_STUDIO_{f.upper()}" for f in Settings.model_fields}
    known |= {FILE_ENV, ENV_DEFAULT_PROVIDER, ENV_FALLBACK_CHAIN, ENV_PROVIDERS_JSON}
    assert sorted(studio_vars.keys() - known) == [], "not a studio setting (typo?)"
    for key in [k for k in os.environ if k.startswith("IMAGE_STUDIO_")]:
        monkeypatch.delenv(key)
    for key, value in studio_vars.items():
        monkeypatch.setenv(key, value)
    settings = Settings()
    assert settings.queue == "embedded"
    assert str(settings.config) == env["IMAGE_STUDIO_CONFIG"]
    assert settings.secret_key is not None and settings.secret_key.get_secret_value() == env["IMAGE_STUDIO_SECRET_KEY"]


def test_studio_provider_file_loads_and_is_mounted(stack, env):
    mounts = dict(v.rsplit(":", 1)[0].split(":", 1) for v in stack["services"]["open-webui"]["volumes"]
                  if v.startswith("."))
    source = next(src for src, target in mounts.items() if target == env["IMAGE_STUDIO_CONFIG"])
    cfg = load_config_file(ROOT / source, env=env)
    assert cfg.default_provider == "comfy" and cfg.fallback_chain == ["a1111"]
    assert [b.url for b in cfg.providers["comfy"].backends] == [env["COMFYUI_URL"]]
    assert [b.url for b in cfg.providers["a1111"].backends] == [env["AUTOMATIC1111_URL"]]
    assert cfg.providers["comfy"].settings["workflow"] == env["COMFYUI_WORKFLOW"]
    keys = {k.key.get_secret_value(): k.role for k in cfg.api_keys}
    assert keys == {env["IMAGES_OPENAI_API_KEY"]: "service"}
