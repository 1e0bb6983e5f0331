"""What the Pipe (image models in Open WebUI's model picker) and the Action (a message button)
share: the model list, the prompt taken from a chat, and a result text written for the user.

Followed from Open WebUI 0.12.4 (paths under ``open_webui/``):

* ``functions.py:72-150`` ``get_function_models``: a Pipe function with a ``pipes`` method is a
  manifold; ``pipes()`` is called *without arguments* and returns ``[{id, name}]``; each entry
  becomes the model ``<function id>.<id>``; ``generate_function_chat_completion`` (154-) calls
  ``pipe(body, __user__, __request__, __event_emitter__, __metadata__, __task__...)`` with the
  OpenAI-style ``body`` (``model``, ``messages``, ``stream``); a returned ``str`` becomes the
  answer (streamed as one chunk when ``stream`` is true);
* ``utils/actions.py`` ``chat_action``: ``action(body, __user__, __request__,
  __event_emitter__...)`` with ``body = {model, messages, chat_id, id (the message), session_id}``.

Since ``pipes()`` gets no request, :func:`mounted_studio` finds the studio on the app of the
already imported ``open_webui.main`` (this module runs only inside Open WebUI's process).
"""

from __future__ import annotations

import json
import sys
from typing import Any
from urllib.parse import quote, unquote

from ...types import Job
from .runtime import studio_of

PROVIDER_PREFIX = "provider."
WORKFLOW_PREFIX = "workflow."
COMFYUI_TYPE = "comfyui"
TITLE_CHARS = 50
"""Characters of the prompt used as the chat's title."""


def mounted_studio() -> Any | None:
    """The studio mounted on Open WebUI's app in this process, or None (not imported, not
    mounted or not started)."""
    main = sys.modules.get("open_webui.main")
    app = getattr(main, "app", None)
    if app is None:
        return None
    try:
        return studio_of(app)
    except Exception:  # noqa: BLE001 - ConfigError: not mounted or not ready; no models then
        return None


async def workflow_names(studio: Any) -> list[str]:
    """Shipped ComfyUI templates, then saved workflows not shadowing one, sorted within each."""
    from ...jobs.workflow_store import WorkflowStore
    from ...providers.comfyui.workflow import list_templates

    names = list(list_templates())
    saved = [w.name for w in await WorkflowStore(studio.store).list()]
    return names + sorted(n for n in saved if n not in names)


def comfyui_provider(studio: Any) -> str | None:
    """The first enabled, loaded ComfyUI provider (runs the workflow models), or None."""
    for item in studio.provider_summaries():
        if item["enabled"] and item["loaded"] and item["type"] == COMFYUI_TYPE:
            return item["id"]
    return None


async def pipe_models(studio: Any | None) -> list[dict[str, str]]:
    """The Pipe's sub-models ``[{id, name}]``: ``provider.<id>`` for every enabled, loaded
    provider, and ``workflow.<name>`` (name URL-quoted: model ids have no spaces) for every
    workflow template when a ComfyUI provider can run them. ``[]`` without a studio."""
    if studio is None:
        return []
    out = [{"id": PROVIDER_PREFIX + item["id"], "name": item["label"]}
           for item in studio.provider_summaries() if item["enabled"] and item["loaded"]]
    if comfyui_provider(studio):
        out += [{"id": WORKFLOW_PREFIX + quote(name, safe=""), "name": f"workflow {name}"}
                for name in await workflow_names(studio)]
    return out


def target_of(model_id: str, studio: Any) -> tuple[str, str]:
    """``(provider, workflow)`` for an Open WebUI model id such as ``image_studio.provider.comfy``
    or ``image_studio.workflow.portrait`` (a workflow runs on :func:`comfyui_provider`); ``("",
    "")`` (the studio's default) for anything else."""
    _, _, sub = (model_id or "").partition(".")
    if sub.startswith(PROVIDER_PREFIX):
        return sub[len(PROVIDER_PREFIX):], ""
    if sub.startswith(WORKFLOW_PREFIX):
        return comfyui_provider(studio) or "", unquote(sub[len(WORKFLOW_PREFIX):])
    return "", ""


def message_text(message: dict[str, Any] | None) -> str:
    """The text of a chat message: its ``content`` string, or its ``text`` parts joined."""
    content = (message or {}).get("content")
    if isinstance(content, str):
        return content.strip()
    if isinstance(content, list):
        parts = [p.get("text", "") for p in content if isinstance(p, dict) and p.get("type") == "text"]
        return "\n".join(p for p in parts if p).strip()
    return ""


def last_user_text(messages: list[dict[str, Any]] | None) -> str:
    """The text of the last ``user`` message of an OpenAI-style ``messages`` list, or ``""``."""
    for message in reversed(messages or []):
        if message.get("role") == "user":
            return message_text(message)
    return ""


async def chat_message_text(body: dict[str, Any]) -> str:
    """The text of the message an Action was pressed on (``body['id']``): from ``body['messages']``
    when it is there, else from the saved chat (``Chats.get_chat_by_id``)."""
    message_id = body.get("id")
    for message in body.get("messages") or []:
        if message.get("id") == message_id:
            return message_text(message)
    chat_id = body.get("chat_id")
    if chat_id and message_id:
        from open_webui.models.chats import Chats  # lazy: Open WebUI only

        chat = await Chats.get_chat_by_id(chat_id)
        messages = ((chat.chat if chat else {}) or {}).get("history", {}).get("messages", {})
        return message_text(messages.get(message_id))
    return ""


def task_answer(messages: list[dict[str, Any]] | None) -> str:
    """The answer to Open WebUI's title/tags/follow-up tasks sent to an image model (JSON with
    ``title``, ``tags`` and ``follow_ups``, the keys ``utils/task.py``'s callers read): the
    title is the start of the chat's prompt."""
    title = " ".join(last_user_text(messages).split())[:TITLE_CHARS] or "Image Studio"
    return json.dumps({"title": title, "tags": [], "follow_ups": []})


def user_summary(job: Job, assets: list[Any], noun: str) -> str:
    """Markdown for the user about a finished job (the files are already on the message)."""
    count = len(assets)
    what = noun if count == 1 else f"{count} {noun}s"
    seeds = sorted({a.seed for a in assets if getattr(a, "seed", None) is not None})
    first = assets[0] if assets else None
    size = f", {first.width}×{first.height} px" if first is not None and first.width and first.height else ""
    seed_text = f", seed {', '.join(str(s) for s in seeds)}" if seeds else ""
    prompt = job.request.prompt.replace("*", "\\*")
    return f"Generated the {what} of *{prompt}* with **{job.provider or 'Image Studio'}**{size}{seed_text}."


__all__ = ["chat_message_text", "last_user_text", "message_text", "mounted_studio", "pipe_models", "target_of",
           "task_answer", "user_summary", "workflow_names"]
