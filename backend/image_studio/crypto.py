"""Encryption of credentials at rest: :class:`SecretBox`, a Fernet (MultiFernet) wrapper.

Key material, first found wins (see :meth:`SecretBox.from_settings`):

1. ``IMAGE_STUDIO_SECRET_KEY`` (``Settings.secret_key``);
2. Open WebUI's ``WEBUI_SECRET_KEY`` environment variable;
3. a random key generated once and kept in ``<data_dir>/.image_studio_secret`` (mode 0600).

A value that already is a Fernet key (urlsafe base64 of 32 bytes, 44 characters) is used as
is; any other string (``WEBUI_SECRET_KEY`` is an arbitrary string) is turned into one with
HKDF-SHA256 (salt ``b"image-studio"``, info ``b"image-studio credentials v1"``). Old keys for
rotation come from ``IMAGE_STUDIO_SECRET_KEY_OLD`` (comma list): values encrypted under an old
key still decrypt, and :meth:`SecretBox.rotate` re-encrypts them under the primary key.

Encrypted values are text: ``"enc:v1:" + <Fernet token>``. The token format is Fernet's
(https://github.com/fernet/spec/blob/master/Spec.md), as implemented by ``cryptography``.

Config (de)serialisation for the API and the store: :func:`config_to_storable` (secrets
encrypted), :func:`config_from_storable`, :func:`config_to_public` (secrets masked) and
:func:`merge_masked` (an admin's update where masked secrets keep their saved values). The
secret slots of a config are: every ``providers.<id>.credentials`` value, each backend's
``password``, a backend ``url`` holding ``user:password@``, backend ``headers`` whose name
looks secret (``Authorization``, ``X-API-Key``, ``Cookie``, ...) and every ``api_keys.<i>.key``.
Provider ``settings`` are not secret: credentials belong in ``credentials``.

A short :meth:`SecretBox.fingerprint` of the primary key (never the key) is stored beside the
saved credentials, so that :meth:`SecretBox.check_fingerprint` can say "the secret key
changed" instead of failing later with undecryptable garbage.
"""

from __future__ import annotations

import base64
import binascii
import copy
import hashlib
import hmac
import logging
import os
import re
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from pydantic import SecretStr
from pydantic_core import to_jsonable_python

from .config import SAVED_SOURCE, UPDATE_SOURCE, Settings, StudioConfig, check_references, validate_config
from .errors import ConfigError

log = logging.getLogger(__name__)

PREFIX = "enc:v1:"
KEY_FILE_NAME = ".image_studio_secret"
HKDF_SALT = b"image-studio"
HKDF_INFO = b"image-studio credentials v1"
_FINGERPRINT_MSG = b"image-studio key fingerprint v1"
CHANGED_KEY_MESSAGE = (
    "the secret key changed since credentials were saved; "
    "set IMAGE_STUDIO_SECRET_KEY_OLD=<old> to migrate"
)


def is_fernet_key(value: str) -> bool:
    """True when ``value`` is a Fernet key: 44 characters of urlsafe base64 encoding 32 bytes."""
    if len(value) != 44:
        return False
    try:
        raw = base64.b64decode(value.encode("ascii"), altchars=b"-_", validate=True)
    except (binascii.Error, UnicodeEncodeError, ValueError):
        return False
    return len(raw) == 32


def derive_key(material: str) -> bytes:
    """The Fernet key (urlsafe base64, 44 bytes) for one piece of key material.

    A Fernet key is returned unchanged; any other non-empty string goes through HKDF-SHA256
    (32 bytes out, salt ``b"image-studio"``, info ``b"image-studio credentials v1"``).

    Raises:
        ConfigError: ``material`` is empty or only whitespace (field ``secret_key``).
    """
    material = material.strip()
    if not material:
        raise ConfigError("the secret key is empty", field="secret_key")
    if is_fernet_key(material):
        return material.encode("ascii")
    hkdf = HKDF(algorithm=hashes.SHA256(), length=32, salt=HKDF_SALT, info=HKDF_INFO)
    return base64.urlsafe_b64encode(hkdf.derive(material.encode("utf-8")))


def _fingerprint_of(key: bytes) -> str:
    return hmac.new(key, _FINGERPRINT_MSG, hashlib.sha256).hexdigest()[:16]


class SecretBox:
    """Encrypts and decrypts credential strings with a primary key and optional old keys.

    Args:
        primary: key material for new encryptions (a Fernet key or any string, see
            :func:`derive_key`).
        old: earlier key material, still accepted for decryption (rotation).
        source: where the primary key came from (``"IMAGE_STUDIO_SECRET_KEY"``,
            ``"WEBUI_SECRET_KEY"`` or the key file path); used in error messages.

    Raises:
        ConfigError: a key is empty.
    """

    def __init__(self, primary: str, old: Sequence[str] = (), *, source: str | None = None) -> None:
        self._primary = derive_key(primary)
        self._old = [derive_key(k) for k in old if k.strip()]
        self._fernet = MultiFernet([Fernet(k) for k in (self._primary, *self._old)])
        self.source = source

    def __repr__(self) -> str:
        return f"SecretBox(fingerprint={self.fingerprint()!r}, old_keys={len(self._old)}, source={self.source!r})"

    @classmethod
    def from_settings(cls, settings: Settings, env: Mapping[str, str] | None = None) -> SecretBox:
        """The box for a process: key from ``settings.secret_key``, else ``WEBUI_SECRET_KEY``
        in ``env`` (default ``os.environ``), else the key file in ``settings.data_dir``
        (created with a new random key, mode 0600, when missing). Old keys come from
        ``settings.secret_key_old`` (comma-separated).

        Raises:
            ConfigError: the key file cannot be read or written (field ``data_dir``).
        """
        env = os.environ if env is None else env
        old = [k for k in (settings.secret_key_old or "").split(",") if k.strip()]
        if settings.secret_key is not None and settings.secret_key.get_secret_value().strip():
            return cls(settings.secret_key.get_secret_value(), old, source="IMAGE_STUDIO_SECRET_KEY")
        webui = env.get("WEBUI_SECRET_KEY", "")
        if webui.strip():
            return cls(webui, old, source="WEBUI_SECRET_KEY")
        path = Path(settings.data_dir) / KEY_FILE_NAME
        return cls(load_or_create_key_file(path), old, source=str(path))

    def encrypt(self, plaintext: str) -> str:
        """``"enc:v1:" + token``: ``plaintext`` (UTF-8) encrypted under the primary key."""
        return PREFIX + self._fernet.encrypt(plaintext.encode("utf-8")).decode("ascii")

    @staticmethod
    def is_encrypted(value: object) -> bool:
        """True when ``value`` is a string made by :meth:`encrypt` (has the ``enc:v1:`` prefix)."""
        return isinstance(value, str) and value.startswith(PREFIX)

    def _token(self, value: str, field: str | None) -> bytes:
        if not self.is_encrypted(value):
            raise ConfigError(f"not an encrypted value (no {PREFIX!r} prefix)", field=field)
        return value[len(PREFIX):].encode("ascii", errors="replace")

    def decrypt(self, value: str, *, field: str | None = None) -> str:
        """The plaintext of an ``"enc:v1:..."`` value.

        Args:
            value: what :meth:`encrypt` returned, under the primary key or an old key.
            field: dotted path of the setting, named in the error.

        Raises:
            ConfigError: ``value`` is not encrypted, or no key fits (the secret key changed:
                the message says to set ``IMAGE_STUDIO_SECRET_KEY_OLD``).
        """
        token = self._token(value, field)
        try:
            return self._fernet.decrypt(token).decode("utf-8")
        except InvalidToken:
            raise ConfigError(CHANGED_KEY_MESSAGE, field=field, source=self.source) from None

    def rotate(self, value: str, *, field: str | None = None) -> str:
        """``value`` re-encrypted under the primary key (it may be under an old key).

        Raises:
            ConfigError: as :meth:`decrypt`.
        """
        token = self._token(value, field)
        try:
            return PREFIX + self._fernet.rotate(token).decode("ascii")
        except InvalidToken:
            raise ConfigError(CHANGED_KEY_MESSAGE, field=field, source=self.source) from None

    def fingerprint(self) -> str:
        """16 hex characters: HMAC-SHA256 of a fixed message under the derived primary key.

        Identifies the key without revealing it; store it with the encrypted credentials.
        """
        return _fingerprint_of(self._primary)

    def knows_fingerprint(self, stored: str) -> bool:
        """True when ``stored`` is the fingerprint of the primary key or of an old key."""
        return any(hmac.compare_digest(stored, _fingerprint_of(k)) for k in (self._primary, *self._old))

    def check_fingerprint(self, stored: str | None) -> None:
        """Check that credentials saved under the key fingerprinted ``stored`` can be decrypted.

        ``None`` (nothing saved yet) passes. A match on an old key passes too: the caller
        should then :meth:`rotate` the saved values and store :meth:`fingerprint` anew.

        Raises:
            ConfigError: ``stored`` matches neither the primary key nor an old key
                (field ``secret_key``; the message says to set ``IMAGE_STUDIO_SECRET_KEY_OLD``).
        """
        if stored is None or self.knows_fingerprint(stored):
            return
        raise ConfigError(CHANGED_KEY_MESSAGE, field="secret_key", source=self.source)


def load_or_create_key_file(path: Path) -> str:
    """The key kept in ``path``; when the file is missing, a new random Fernet key is written
    there (parent folders created, mode 0600) and the creation is logged (not the key).

    Raises:
        ConfigError: the file cannot be read or written, or is empty (field ``data_dir``).
    """
    try:
        return _read_key_file(path)
    except FileNotFoundError:
        pass
    except OSError as exc:
        raise ConfigError(f"cannot read the secret key file {path}: {exc}", field="data_dir") from exc
    key = Fernet.generate_key()
    # Written whole to a private temporary file, then linked into place: concurrent workers
    # never read a half-written key, and the first link wins.
    tmp = path.with_name(f"{path.name}.{os.getpid()}.tmp")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "wb") as fh:
            if hasattr(os, "fchmod"):  # POSIX: 0600 whatever the umask
                os.fchmod(fh.fileno(), 0o600)
            fh.write(key + b"\n")
            fh.flush()
            os.fsync(fh.fileno())
        os.link(tmp, path)
    except FileExistsError:  # another process created it meanwhile: use theirs
        return _read_key_file(path)
    except OSError as exc:
        raise ConfigError(f"cannot create the secret key file {path}: {exc}", field="data_dir") from exc
    finally:
        tmp.unlink(missing_ok=True)
    log.warning(
        "no IMAGE_STUDIO_SECRET_KEY or WEBUI_SECRET_KEY set: generated a secret key for stored "
        "credentials in %s (mode 0600); keep this file, or set IMAGE_STUDIO_SECRET_KEY", path,
    )
    return key.decode("ascii")


def _read_key_file(path: Path) -> str:
    text = path.read_text(encoding="utf-8").strip()
    if not text:
        raise ConfigError(f"the secret key file {path} is empty; delete it or set IMAGE_STUDIO_SECRET_KEY",
                          field="data_dir")
    mode = path.stat().st_mode & 0o777
    if mode & 0o077:
        log.warning("the secret key file %s has mode %o; it should be 0600", path, mode)
    return text


# ------------------------------------------------------------- config serialisation

MASK = "\u2022\u2022\u2022\u2022"  # "••••"
_SENSITIVE_HEADER = re.compile(r"auth|token|key|secret|cookie|passw|signature", re.IGNORECASE)
SecretFn = Callable[[str, str, str], str]  # (dotted path, value, kind "secret" | "url") -> value


def mask_secret(value: str) -> str:
    """``"••••"`` plus the last 4 characters when ``value`` is longer than 8, else ``"••••"``."""
    return MASK + value[-4:] if len(value) > 8 else MASK


def _url_parts(url: str) -> tuple[str, str | None, str]:
    """(user, password or None, ``url`` without its ``user:password@``)."""
    parts = urlsplit(url)
    userinfo, at, hostport = parts.netloc.rpartition("@")
    user, colon, password = userinfo.partition(":")
    return user, (password if at and colon else None), urlunsplit(parts._replace(netloc=hostport))


def mask_url(url: str) -> str:
    """``url`` with the password of its ``user:password@`` part masked by :func:`mask_secret`."""
    user, password, bare = _url_parts(url)
    if password is None:
        return url
    parts = urlsplit(bare)
    return urlunsplit(parts._replace(netloc=f"{user}:{mask_secret(password)}@{parts.netloc}"))


def _url_key(url: str) -> str:
    return _url_parts(url)[2].rstrip("/")


def _map_secrets(data: dict[str, Any], fn: SecretFn) -> dict[str, Any]:
    """Replace, in place, every secret string of a JSON-shaped config dict by
    ``fn(dotted_path, value, kind)``; tolerant of malformed input (validated later)."""

    def apply(obj: dict[str, Any], key: str, path: str, kind: str = "secret") -> None:
        if isinstance(obj.get(key), str):
            obj[key] = fn(path, obj[key], kind)

    providers = data.get("providers")
    for pid, p in providers.items() if isinstance(providers, dict) else ():
        if not isinstance(p, dict):
            continue
        creds, backends = p.get("credentials"), p.get("backends")
        for key in list(creds) if isinstance(creds, dict) else ():
            apply(creds, key, f"providers.{pid}.credentials.{key}")
        for i, b in enumerate(backends if isinstance(backends, list) else ()):
            if not isinstance(b, dict):
                continue
            base = f"providers.{pid}.backends.{i}"
            apply(b, "password", f"{base}.password")
            url = b.get("url")
            if isinstance(url, str) and (_url_parts(url)[1] is not None or SecretBox.is_encrypted(url)):
                apply(b, "url", f"{base}.url", "url")
            headers = b.get("headers")
            for name in list(headers) if isinstance(headers, dict) else ():
                if _SENSITIVE_HEADER.search(name):
                    apply(headers, name, f"{base}.headers.{name}")
    keys = data.get("api_keys")
    for i, k in enumerate(keys if isinstance(keys, list) else ()):
        if isinstance(k, dict):
            apply(k, "key", f"api_keys.{i}.key")
    prompts = data.get("prompts")
    if isinstance(prompts, dict):
        apply(prompts, "api_key", "prompts.api_key")
    return data


def _reveal(node: Any) -> Any:
    if isinstance(node, SecretStr):
        return node.get_secret_value()
    if isinstance(node, dict):
        return {k: _reveal(v) for k, v in node.items()}
    if isinstance(node, (list, tuple)):
        return [_reveal(v) for v in node]
    return node


def _plain(cfg: StudioConfig) -> dict[str, Any]:
    """JSON-ready dump of ``cfg`` with the secrets in clear (internal only)."""
    return to_jsonable_python(_reveal(cfg.model_dump()))


def config_to_storable(cfg: StudioConfig, box: SecretBox) -> dict[str, Any]:
    """JSON-ready dict of ``cfg`` for the database, every secret slot (see the module
    docstring) replaced by ``box.encrypt(value)`` (``"enc:v1:..."``). Store
    ``box.fingerprint()`` beside it. Store only what the admin set (a saved layer), not the
    merged config, or file providers are frozen into the database."""
    return _map_secrets(_plain(cfg), lambda _path, value, _kind: box.encrypt(value))


def decrypt_secrets(data: Mapping[str, Any], box: SecretBox | Callable[[], SecretBox]) -> dict[str, Any]:
    """A deep copy of a stored config dict with every ``enc:v1:`` secret decrypted; values
    in clear are kept as they are. ``box`` may be a factory, called only when needed.

    Raises:
        ConfigError: a value does not decrypt (the key changed); ``field`` is its path.
    """
    resolved: list[SecretBox] = []

    def dec(path: str, value: str, _kind: str) -> str:
        if not SecretBox.is_encrypted(value):
            return value
        if not resolved:
            resolved.append(box if isinstance(box, SecretBox) else box())
        return resolved[0].decrypt(value, field=path)

    return _map_secrets(copy.deepcopy(dict(data)), dec)


def rotate_secrets(data: Mapping[str, Any], box: SecretBox) -> dict[str, Any]:
    """A deep copy of a stored config dict with every ``enc:v1:`` secret re-encrypted under
    the primary key (values saved under an old key move to the new one).

    Raises:
        ConfigError: a value decrypts under no key; ``field`` is its path.
    """
    def rot(path: str, value: str, _kind: str) -> str:
        return box.rotate(value, field=path) if SecretBox.is_encrypted(value) else box.encrypt(value)

    return _map_secrets(copy.deepcopy(dict(data)), rot)


def config_from_storable(data: Mapping[str, Any], box: SecretBox) -> StudioConfig:
    """The :class:`StudioConfig` in a dict from :func:`config_to_storable`, secrets decrypted.
    References are not checked (a stored layer may name providers of the file).

    Raises:
        ConfigError: a secret does not decrypt, or the data does not validate (field named).
    """
    return validate_config(decrypt_secrets(data, box), SAVED_SOURCE)


def config_to_public(cfg: StudioConfig) -> dict[str, Any]:
    """JSON-ready dict of ``cfg`` for API responses: every secret slot masked by
    :func:`mask_secret` (URL passwords by :func:`mask_url`); no secret is ever returned."""
    return _map_secrets(_plain(cfg), lambda _p, v, kind: mask_url(v) if kind == "url" else mask_secret(v))


def _is_mask(value: object) -> bool:
    return isinstance(value, str) and value.startswith(MASK)


def _masked_error(path: str) -> ConfigError:
    return ConfigError(f"{path} is a masked value that matches no saved secret; send the secret itself",
                       field=path, source=UPDATE_SOURCE)


def _keep_secret(obj: dict[str, Any], key: str, old: str | None, path: str) -> None:
    """Restore ``obj[key]`` to ``old`` when it is omitted or still equals the mask of ``old``."""
    if key not in obj:
        if old is not None:
            obj[key] = old
        return
    if _is_mask(obj[key]):
        if old is None or obj[key] != mask_secret(old):
            raise _masked_error(path)
        obj[key] = old


def _keep_secret_map(obj: dict[str, Any], key: str, old: Mapping[str, Any], path: str,
                     only: re.Pattern[str] | None = None) -> None:
    """:func:`_keep_secret` for each entry of the mapping ``obj[key]``; ``null`` drops one."""
    if obj.get(key) is None:
        obj[key] = {}
    values = obj[key]
    if not isinstance(values, dict):
        return
    for name in {*values, *old}:
        if only is None or only.search(name):
            _keep_secret(values, name, old.get(name), f"{path}.{name}")
    for name in [n for n, v in values.items() if v is None]:
        del values[name]


def _keep_provider_secrets(p: dict[str, Any], old: Mapping[str, Any], base: str) -> None:
    _keep_secret_map(p, "credentials", old.get("credentials") or {}, f"{base}.credentials")
    olds = {_url_key(b["url"]): b for b in old.get("backends") or []}
    backends = p.get("backends")
    for i, b in enumerate(backends if isinstance(backends, list) else ()):
        if not isinstance(b, dict) or not isinstance(b.get("url"), str):
            continue
        path = f"{base}.backends.{i}"
        ob = olds.get(_url_key(b["url"]), {})
        if _is_mask(_url_parts(b["url"])[1]):
            if not ob or mask_url(ob["url"]) != b["url"]:
                raise _masked_error(f"{path}.url")
            b["url"] = ob["url"]
        _keep_secret(b, "password", ob.get("password"), f"{path}.password")
        _keep_secret_map(b, "headers", ob.get("headers") or {}, f"{path}.headers", only=_SENSITIVE_HEADER)


def _keep_api_keys(new: list[Any], old: list[dict[str, Any]]) -> None:
    for i, k in enumerate(new):
        value = k.get("key") if isinstance(k, dict) else ""
        if value is not None and not _is_mask(value):
            continue
        fits = [j for j, o in enumerate(old)
                if o["owner"] == k.get("owner") and (value is None or mask_secret(o["key"]) == value)]
        j = i if i in fits else (fits[0] if len(fits) == 1 else None)
        if j is None:
            raise _masked_error(f"api_keys.{i}.key")
        k["key"] = old[j]["key"]


def merge_masked(update: Mapping[str, Any], current: StudioConfig) -> StudioConfig:
    """The config an admin's ``PUT /config`` body asks for, with masked secrets resolved.

    ``update`` is shaped like :func:`config_to_public` output. A top-level key it omits keeps
    its current value; ``providers`` and ``api_keys``, when given, are the new map and list
    (an id left out is removed). Within them, and for ``prompts.api_key``, a secret that still equals its mask, or is
    omitted, keeps the current secret (backends are matched by URL without its user info,
    API keys by owner and mask, preferring the same index); a new value replaces it; ``null``
    removes a credential or header, or clears a password.

    Raises:
        ConfigError: a masked value matches no current secret (send the secret itself), or
            the result does not validate or names unknown providers; ``field`` is the path.
    """
    cur = _plain(current)
    new = copy.deepcopy(dict(update))
    for key, value in cur.items():
        new.setdefault(key, value)
    providers = new.get("providers")
    for pid, p in providers.items() if isinstance(providers, dict) else ():
        if isinstance(p, dict):
            _keep_provider_secrets(p, cur["providers"].get(pid) or {}, f"providers.{pid}")
    if isinstance(new.get("api_keys"), list):
        _keep_api_keys(new["api_keys"], cur["api_keys"])
    prompts = new.get("prompts")
    if isinstance(prompts, dict) and (_is_mask(prompts.get("api_key")) or "api_key" not in prompts):
        prompts["api_key"] = (cur.get("prompts") or {}).get("api_key")  # masked or left out: kept
    cfg = validate_config(new, UPDATE_SOURCE)
    check_references(cfg, source=UPDATE_SOURCE)
    return cfg
