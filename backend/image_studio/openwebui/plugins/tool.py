"""
title: Image Studio
author: Image Studio for Open WebUI
description: Generate and edit images and videos with Image Studio (ComfyUI, Automatic1111, cloud APIs) from chat: progress in the status line, results in the chat.
version: 0.1.0
required_open_webui_version: 0.12.0
license: MIT
"""

# The Open WebUI Tool of Image Studio. `image-studio openwebui install-tools` creates it (id
# `image_studio`) through Open WebUI's tools API; Open WebUI keeps this text in its database
# and runs it in its own process, where the studio is mounted. The work is done by the
# installed package (image_studio.openwebui.plugins.runtime and .owui_files): this file only
# maps the tool calls onto it, so an upgrade of the package upgrades the behaviour.
# Open WebUI rewrites a few import prefixes in plugin text (utils/plugin.py replace_imports),
# so nothing here starts an import with them.

from pydantic import BaseModel, Field

try:
    from image_studio.openwebui.plugins import owui_files as _files
    from image_studio.openwebui.plugins import runtime as _studio
    from image_studio.types import MediaKind as _MediaKind

    _IMPORT_ERROR = ""
except ImportError as _exc:  # the package is not installed in Open WebUI's environment
    _files = _studio = _MediaKind = None
    _IMPORT_ERROR = str(_exc)

DEFAULT_SIZE = "1024x1024"


class Tools:
    class Valves(BaseModel):
        default_provider: str = Field(
            default="", description="Studio provider id used when the model names none (empty: the studio's default "
            "provider and fallback chain).")
        default_workflow: str = Field(
            default="", description="ComfyUI workflow template used when the model names none (empty: none).")
        max_n: int = Field(default=4, ge=1, le=16, description="Most images one tool call may ask for.")
        wait_seconds: float = Field(
            default=300.0, ge=1, le=3600, description="Seconds the chat waits for a job; a longer job goes on and "
            "its result lands in the Image Studio gallery.")

    class UserValves(BaseModel):
        size: str = Field(default="", description="Preferred image size, WIDTHxHEIGHT in pixels (empty: 1024x1024), "
                          "used when the model does not choose one.")

    def __init__(self):
        self.valves = self.Valves()

    async def generate_image(
        self,
        prompt: str,
        size: str = "",
        n: int = 1,
        provider: str = "",
        workflow: str = "",
        seed: int = -1,
        __user__: dict = None,
        __request__=None,
        __event_emitter__=None,
        __metadata__: dict = None,
    ) -> str:
        """
        Generate images from a text prompt with Image Studio and show them in the chat.
        :param prompt: A detailed description of the image to generate.
        :param size: Output size in WIDTHxHEIGHT pixels, such as "1024x1024" or "1536x1024". Leave empty for the user's preferred size.
        :param n: How many images to generate (1 unless the user asks for more).
        :param provider: Image Studio provider id to use. Leave empty for the default.
        :param workflow: ComfyUI workflow template to use. Leave empty for the default.
        :param seed: Random seed for a reproducible image; -1 for a random one.
        :return: A short confirmation (the images are already shown to the user), or why it failed.
        """
        return await self._run(prompt, size, n, provider, workflow, seed, "image", "", __user__, __request__,
                               __event_emitter__, __metadata__)

    async def edit_image(
        self,
        prompt: str,
        image: str = "",
        size: str = "",
        provider: str = "",
        seed: int = -1,
        __user__: dict = None,
        __request__=None,
        __event_emitter__=None,
        __metadata__: dict = None,
    ) -> str:
        """
        Change an existing image according to a text prompt (image to image) and show the result in the chat.
        :param prompt: A description of the image wanted, the changes included.
        :param image: The image to change: an Open WebUI file id or /api/v1/files/<id>/content URL. Leave empty for the last image in the chat.
        :param size: Output size in WIDTHxHEIGHT pixels. Leave empty to keep the size of the source image.
        :param provider: Image Studio provider id to use. Leave empty for the default.
        :param seed: Random seed; -1 for a random one.
        :return: A short confirmation (the image is already shown to the user), or why it failed.
        """
        return await self._run(prompt, size, 1, provider, "", seed, "edit", image or "", __user__, __request__,
                               __event_emitter__, __metadata__)

    async def generate_video(
        self,
        prompt: str,
        size: str = "",
        provider: str = "",
        workflow: str = "",
        seed: int = -1,
        __user__: dict = None,
        __request__=None,
        __event_emitter__=None,
        __metadata__: dict = None,
    ) -> str:
        """
        Generate a short video from a text prompt with Image Studio and show it in the chat.
        :param prompt: A detailed description of the video to generate.
        :param size: Frame size in WIDTHxHEIGHT pixels, such as "1280x720". Leave empty for the user's preferred size.
        :param provider: Image Studio provider id to use (one that can make videos). Leave empty for the default.
        :param workflow: ComfyUI workflow template that makes a video. Leave empty for the default.
        :param seed: Random seed; -1 for a random one.
        :return: A short confirmation (the video is already shown to the user), or why it failed.
        """
        return await self._run(prompt, size, 1, provider, workflow, seed, "video", "", __user__, __request__,
                               __event_emitter__, __metadata__)

    async def _run(self, prompt, size, n, provider, workflow, seed, kind, image, user, request, emitter, metadata):
        if _studio is None:
            return "Image Studio is not installed in this Open WebUI (" + _IMPORT_ERROR + "): tell the user."
        if request is None or not user:
            return "Image Studio needs a chat request and a signed-in user: tell the user."
        call = _studio.ChatCall(request=request, user=user, emitter=emitter, metadata=metadata or {})
        user_valves = user.get("valves")
        preferred = (getattr(user_valves, "size", "") or "").strip()
        try:
            init_image = None
            if kind == "edit":
                owui_user = await _studio.openwebui_user(user)
                init_image, _mime = await (_files.load_image(image, owui_user) if image
                                           else _files.find_chat_image(call, owui_user))
                size = size or _studio.image_size(init_image)
            request_model = _studio.build_request(
                prompt=prompt, size=(size or preferred or DEFAULT_SIZE), n=n, provider=provider, workflow=workflow,
                seed=seed, max_n=self.valves.max_n, init_image=init_image,
                media=_MediaKind.video if kind == "video" else _MediaKind.image,
                defaults={"provider": self.valves.default_provider, "workflow": self.valves.default_workflow},
            )
        except _studio.ImageStudioError as exc:
            await call.status("Image Studio: " + exc.message, done=True)
            return "The request could not be made: " + exc.message + "."
        return await _studio.run_in_chat(call, request_model, wait_seconds=self.valves.wait_seconds)
