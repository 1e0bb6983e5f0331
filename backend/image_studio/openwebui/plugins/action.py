"""
title: Generate image from this message
author: Image Studio for Open WebUI
description: A message button: Image Studio generates an image from the message's text and attaches it to that message.
version: 0.1.0
required_open_webui_version: 0.12.0
license: MIT
"""

# The Open WebUI Action of Image Studio. `image-studio openwebui install-tools` creates it
# (function id `image_studio_action`), makes it active and global (a button under every
# message). Open WebUI keeps this text in its database and runs it in its own process, where the
# studio is mounted; the work is done by the installed package
# (image_studio.openwebui.plugins.runtime, .owui_files and .chat_models).
# Open WebUI rewrites a few import prefixes in plugin text (utils/plugin.py replace_imports),
# so nothing here starts an import with them.

from pydantic import BaseModel, Field

try:
    from image_studio.openwebui.plugins import chat_models as _models
    from image_studio.openwebui.plugins import runtime as _studio

    _IMPORT_ERROR = ""
except ImportError as _exc:  # the package is not installed in Open WebUI's environment
    _models = _studio = None
    _IMPORT_ERROR = str(_exc)


class Action:
    class Valves(BaseModel):
        provider: str = Field(default="", description="Studio provider id (empty: the studio's default provider "
                              "and fallback chain).")
        workflow: str = Field(default="", description="ComfyUI workflow template (empty: none).")
        size: str = Field(default="1024x1024", description="Image size, WIDTHxHEIGHT in pixels.")
        max_prompt_chars: int = Field(default=2000, ge=10, le=20000,
                                      description="The message text is cut to this many characters.")
        wait_seconds: float = Field(
            default=300.0, ge=1, le=3600, description="Seconds to wait for a job; a longer job goes on and its "
            "result lands in the Image Studio gallery.")

    def __init__(self):
        self.valves = self.Valves()

    async def action(self, body: dict, __user__: dict = None, __request__=None, __event_emitter__=None,
                     __event_call__=None) -> dict:
        if _studio is None:
            return {"status": "error",
                    "message": "Image Studio is not installed in this Open WebUI (" + _IMPORT_ERROR + ")."}
        if __request__ is None or not __user__:
            return {"status": "error", "message": "Image Studio needs a request and a signed-in user."}
        metadata = {"chat_id": body.get("chat_id"), "message_id": body.get("id"), "session_id": body.get("session_id")}
        call = _studio.ChatCall(request=__request__, user=__user__, emitter=__event_emitter__, metadata=metadata)
        try:
            prompt = (await _models.chat_message_text(body))[: self.valves.max_prompt_chars]
            request_model = _studio.build_request(
                prompt=prompt, size=self.valves.size, n=1, provider=self.valves.provider,
                workflow=self.valves.workflow, seed=-1, max_n=1)
        except _studio.ImageStudioError as exc:
            await call.status("Image Studio: " + exc.message, done=True)
            return {"status": "error", "message": exc.message}
        text = await _studio.run_in_chat(call, request_model, wait_seconds=self.valves.wait_seconds,
                                         describe_result=_models.user_summary)
        return {"status": "ok" if text.startswith("Generated") else "error", "message": text}
