"""
title: Image Studio models
author: Image Studio for Open WebUI
description: Image Studio's providers and workflow templates as models in the model picker: the last message is the prompt, the images land in the chat.
version: 0.1.0
required_open_webui_version: 0.12.0
license: MIT
"""

# The Open WebUI Pipe (manifold) of Image Studio. `image-studio openwebui install-tools` creates
# it (function id `image_studio`), so its models are `image_studio.provider.<id>` and
# `image_studio.workflow.<name>`. Open WebUI keeps this text in its database and runs it in its
# own process, where the studio is mounted; the work is done by the installed package
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


class Pipe:
    class Valves(BaseModel):
        size: str = Field(default="1024x1024", description="Image size, WIDTHxHEIGHT in pixels.")
        n: int = Field(default=1, ge=1, le=8, description="Images per message.")
        wait_seconds: float = Field(
            default=300.0, ge=1, le=3600, description="Seconds the chat waits for a job; a longer job goes on and "
            "its result lands in the Image Studio gallery.")

    class UserValves(BaseModel):
        size: str = Field(default="", description="Preferred image size, WIDTHxHEIGHT in pixels (empty: the "
                          "admin's).")

    def __init__(self):
        self.type = "manifold"
        self.name = "Image Studio: "
        self.valves = self.Valves()

    async def pipes(self):
        if _models is None:
            return []
        return await _models.pipe_models(_models.mounted_studio())

    async def pipe(self, body: dict, __user__: dict = None, __request__=None, __event_emitter__=None,
                   __metadata__: dict = None, __task__=None, __task_body__: dict = None) -> str:
        if _studio is None:
            return "Image Studio is not installed in this Open WebUI (" + _IMPORT_ERROR + ")."
        if __task__:  # a title, tags or follow-up task of the chat: never generate an image for it
            return _models.task_answer((__task_body__ or {}).get("messages"))
        prompt = _models.last_user_text(body.get("messages"))
        if __request__ is None or not __user__:
            return "Image Studio needs a chat request and a signed-in user."
        call = _studio.ChatCall(request=__request__, user=__user__, emitter=__event_emitter__,
                                metadata=__metadata__ or {})
        preferred = (getattr(__user__.get("valves"), "size", "") or "").strip()
        try:
            studio = _studio.studio_of(__request__.app)
            provider, workflow = _models.target_of(body.get("model", ""), studio)
            request_model = _studio.build_request(
                prompt=prompt, size=preferred or self.valves.size, n=self.valves.n, provider=provider,
                workflow=workflow, seed=-1, max_n=self.valves.n)
        except _studio.ImageStudioError as exc:
            await call.status("Image Studio: " + exc.message, done=True)
            return "The image could not be generated: " + exc.message + "."
        return await _studio.run_in_chat(call, request_model, wait_seconds=self.valves.wait_seconds,
                                         describe_result=_models.user_summary)
