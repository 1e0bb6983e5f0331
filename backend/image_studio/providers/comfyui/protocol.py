"""ComfyUI's wire shapes, as pure functions (no I/O): binary websocket frames, ``POST /prompt``
error bodies, ``/history`` entries and ``/object_info`` combo lists.

Sources of the formats (ComfyUI 0.3.64, commit ``a125cd84``, and the transcripts recorded
from it in ``tests/fixtures/comfyui/``):

* ``server.py`` ``PromptServer.encode_bytes`` / ``send_image`` / ``send_image_with_metadata`` /
  ``send_progress_text``: every binary frame starts with a big-endian u32 event type.
  Event 1 (PREVIEW_IMAGE) is ``[u32 1][u32 format (1=JPEG, 2=PNG)][image]``; event 4
  (PREVIEW_IMAGE_WITH_METADATA, sent to clients that announced
  ``feature_flags.supports_preview_metadata``) is ``[u32 4][u32 n][n bytes of JSON][image]``
  with ``prompt_id``, ``node_id`` and ``image_type`` in the JSON; event 3 (TEXT) is
  ``[u32 3][u32 n][n bytes node id][UTF-8 text]``.
* ``server.py`` ``post_prompt``: a refused prompt is HTTP 400 ``{"error": {type, message,
  details, extra_info}, "node_errors": {node_id: {errors: [...], dependent_outputs,
  class_type}}}``; an accepted one is 200 ``{prompt_id, number, node_errors}``, where
  ``node_errors`` lists the output branches that were dropped.
* ``execution.py`` / ``main.py``: a ``/history/{id}`` entry is ``{prompt: [number, id, prompt,
  extra_data, outputs_to_execute], outputs: {node_id: {images|gifs|videos...: [{filename,
  subfolder, type}]}}, status: {status_str, completed, messages: [[type, data], ...]}, meta}``.
"""

from __future__ import annotations

import json
import re
import struct
from dataclasses import dataclass, field
from typing import Any

from ...errors import GenerationFailed, InvalidRequest, JobCanceled, ProviderError

PREVIEW_IMAGE = 1
TEXT = 3
PREVIEW_IMAGE_WITH_METADATA = 4
IMAGE_FORMATS = {1: "image/jpeg", 2: "image/png"}

_U32 = struct.Struct(">I")


@dataclass(frozen=True)
class BinaryFrame:
    """One parsed binary websocket frame.

    ``event`` is the frame type (1, 3 or 4); ``image`` the encoded preview (JPEG or PNG bytes)
    with its ``mime``; ``metadata`` the JSON of an event-4 frame (``prompt_id``, ``node_id``
    ...); ``node_id`` and ``text`` the parts of an event-3 progress-text frame.
    """

    event: int
    image: bytes | None = None
    mime: str | None = None
    metadata: dict[str, Any] = field(default_factory=dict)
    node_id: str | None = None
    text: str | None = None

    @property
    def prompt_id(self) -> str | None:
        """The prompt the frame belongs to; only event-4 frames carry one."""
        pid = self.metadata.get("prompt_id")
        return str(pid) if pid else None


def _u32(data: bytes, offset: int) -> int:
    if len(data) < offset + 4:
        raise ProviderError(f"ComfyUI binary frame too short ({len(data)} bytes) at offset {offset}")
    return _U32.unpack_from(data, offset)[0]


def parse_binary_frame(data: bytes) -> BinaryFrame | None:
    """Parse one binary websocket message (layouts in the module docstring).

    Returns None for event types this client does not use.

    Raises:
        ProviderError: the frame is truncated or its metadata is not JSON.
    """
    event = _u32(data, 0)
    if event == PREVIEW_IMAGE:
        fmt = _u32(data, 4)
        return BinaryFrame(event, image=bytes(data[8:]), mime=IMAGE_FORMATS.get(fmt, "image/jpeg"))
    if event == PREVIEW_IMAGE_WITH_METADATA:
        size = _u32(data, 4)
        end = 8 + size
        if len(data) < end:
            raise ProviderError(f"ComfyUI preview frame declares {size} bytes of metadata, has {len(data) - 8}")
        try:
            meta = json.loads(bytes(data[8:end]).decode("utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise ProviderError(f"ComfyUI preview frame metadata is not JSON: {exc}") from exc
        meta = meta if isinstance(meta, dict) else {}
        return BinaryFrame(event, image=bytes(data[end:]), mime=str(meta.get("image_type") or "image/jpeg"),
                           metadata=meta, node_id=str(meta["node_id"]) if meta.get("node_id") else None)
    if event == TEXT:
        size = _u32(data, 4)
        end = 8 + size
        if len(data) < end:
            raise ProviderError(f"ComfyUI text frame declares a {size}-byte node id, has {len(data) - 8}")
        node = bytes(data[8:end]).decode("utf-8", "replace")
        return BinaryFrame(event, node_id=node, text=bytes(data[end:]).decode("utf-8", "replace"))
    return None


# ---------------------------------------------------------------------------- /prompt errors

_NODE_ID_IN_DETAILS = re.compile(r"Node ID '#?([^']+)'")


def _node_error_lines(node_errors: dict[str, Any]) -> tuple[list[str], str | None]:
    lines: list[str] = []
    first_field: str | None = None
    for node_id, entry in node_errors.items():
        class_type = entry.get("class_type", "?") if isinstance(entry, dict) else "?"
        errors = entry.get("errors", []) if isinstance(entry, dict) else []
        for err in errors or [{}]:
            extra = err.get("extra_info") or {}
            name = extra.get("input_name")
            where = f"node {node_id} ({class_type})" + (f" input {name!r}" if name else "")
            text = err.get("message", "invalid")
            if err.get("details"):
                text = f"{text}: {err['details']}"
            lines.append(f"{where}: {text}")
            if first_field is None:
                first_field = f"workflow.nodes.{node_id}" + (f".inputs.{name}" if name else "")
    return lines, first_field


def prompt_rejection(body: Any, status: int) -> InvalidRequest:
    """The :class:`InvalidRequest` for a refused ``POST /prompt`` (HTTP 400).

    The message names every node id, class_type and input at fault; ``field`` is
    ``workflow.nodes.<id>.inputs.<name>`` for the first node error, ``workflow.nodes.<id>``
    for an unknown class (``invalid_prompt``), else ``workflow``.
    """
    if not isinstance(body, dict):
        return InvalidRequest(f"ComfyUI refused the workflow (HTTP {status}): {str(body)[:300]}", field="workflow")
    error = body.get("error") if isinstance(body.get("error"), dict) else {"message": str(body.get("error", ""))}
    node_errors = body.get("node_errors") if isinstance(body.get("node_errors"), dict) else {}
    kind = error.get("type", "error")
    lines, field_path = _node_error_lines(node_errors)
    head = error.get("message") or kind
    if not lines and error.get("details") and error.get("details") != head:
        head = f"{head} ({error['details']})"
    if field_path is None:
        match = _NODE_ID_IN_DETAILS.search(str(error.get("details", "")))
        field_path = f"workflow.nodes.{match.group(1)}" if match else "workflow"
    message = f"ComfyUI refused the workflow [{kind}]: {head}"
    if lines:
        message += ": " + "; ".join(lines)
    return InvalidRequest(message, field=field_path)


def node_errors_summary(node_errors: dict[str, Any]) -> str:
    """One line per dropped output branch of a 200 answer with ``node_errors``."""
    return "; ".join(_node_error_lines(node_errors)[0])


# ---------------------------------------------------------------------------- /history


@dataclass(frozen=True)
class OutputFile:
    """One output file named in a history entry: ``GET /view?filename&subfolder&type``."""

    node_id: str
    key: str
    filename: str
    subfolder: str = ""
    type: str = "output"
    format: str | None = None


def collect_outputs(entry: dict[str, Any], *, types: tuple[str, ...] = ("output",)) -> list[OutputFile]:
    """Every file of ``type`` in ``types`` in a history entry's ``outputs``.

    Any list of ``{filename, subfolder, type}`` dicts counts, whatever its key (``images``,
    ``gifs`` from VideoHelperSuite, ``videos``, ``audio`` ...); ``temp`` files
    (PreviewImage) are skipped unless asked for.
    """
    found: list[OutputFile] = []
    outputs = entry.get("outputs") or {}
    for node_id, ui in outputs.items():
        if not isinstance(ui, dict):
            continue
        for key, items in ui.items():
            if not isinstance(items, list):
                continue
            for item in items:
                if not (isinstance(item, dict) and item.get("filename")):
                    continue
                kind = str(item.get("type") or "output")
                if kind not in types:
                    continue
                found.append(OutputFile(str(node_id), str(key), str(item["filename"]),
                                        str(item.get("subfolder") or ""), kind, item.get("format")))
    return found


def history_finished(entry: dict[str, Any] | None) -> bool:
    """True when a history entry is final (success or error)."""
    if not entry:
        return False
    status = entry.get("status") or {}
    return bool(status.get("completed")) or status.get("status_str") in ("success", "error")


def execution_failure(data: dict[str, Any], *, provider: str | None, backend: str | None) -> GenerationFailed:
    """A :class:`GenerationFailed` from an ``execution_error`` message (websocket or history):
    the node id, the node type and the exception named; ``field`` ``workflow.nodes.<id>``."""
    node_id = data.get("node_id")
    node_type = data.get("node_type", "?")
    exc_type = data.get("exception_type") or "error"
    exc_msg = str(data.get("exception_message") or "").strip()
    message = f"ComfyUI node {node_id} ({node_type}) failed: {exc_type}: {exc_msg}"
    return GenerationFailed(message, provider=provider, backend=backend, retryable=False,
                            field=f"workflow.nodes.{node_id}" if node_id is not None else "workflow")


def interrupted(data: dict[str, Any], prompt_id: str) -> JobCanceled:
    """The :class:`JobCanceled` for an ``execution_interrupted`` message."""
    node = data.get("node_id")
    where = f" at node {node} ({data.get('node_type', '?')})" if node is not None else ""
    return JobCanceled(f"ComfyUI prompt {prompt_id} was interrupted{where}")


def raise_for_history(entry: dict[str, Any], prompt_id: str, *, provider: str | None,
                      backend: str | None) -> None:
    """Raise what a finished, failed history entry says happened; return for a success.

    Raises:
        GenerationFailed: an ``execution_error`` (or an unexplained error status).
        JobCanceled: an ``execution_interrupted``.
    """
    status = entry.get("status") or {}
    if status.get("status_str") != "error":
        return
    for item in status.get("messages") or []:
        if not (isinstance(item, (list, tuple)) and len(item) == 2 and isinstance(item[1], dict)):
            continue
        if item[0] == "execution_error":
            raise execution_failure(item[1], provider=provider, backend=backend)
        if item[0] == "execution_interrupted":
            raise interrupted(item[1], prompt_id)
    raise GenerationFailed(f"ComfyUI prompt {prompt_id} ended with an error and no message",
                           provider=provider, backend=backend, retryable=False)


# ---------------------------------------------------------------------------- /object_info


def combo_options(node_info: dict[str, Any] | None, input_name: str) -> list[str]:
    """The choices of a combo input in one ``/object_info`` entry, or ``[]``.

    Both spellings are read: the classic ``[["a", "b"], {...}]`` and the v3 schema's
    ``["COMBO", {"options": ["a", "b"]}]``.
    """
    if not node_info:
        return []
    inputs = node_info.get("input") or {}
    for group in ("required", "optional"):
        spec = (inputs.get(group) or {}).get(input_name)
        if not spec:
            continue
        head = spec[0]
        if isinstance(head, list):
            return [str(x) for x in head]
        if head == "COMBO" and len(spec) > 1 and isinstance(spec[1], dict):
            return [str(x) for x in spec[1].get("options") or []]
    return []
