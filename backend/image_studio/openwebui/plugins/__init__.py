"""Image Studio's Open WebUI plugins: their sources, and the code they run.

* ``tool.py``: the Tool (``class Tools``: ``generate_image``, ``edit_image``,
  ``generate_video``), installed with id :data:`TOOL_ID` by :mod:`image_studio.openwebui.install`.
  It is *source text* for Open WebUI (which stores it and ``exec``\\ s it), shipped inside the
  package and read with :func:`plugin_source`; it is not imported by the studio itself.
* :mod:`.runtime` and :mod:`.owui_files`: what the plugins call, in Open WebUI's process (the
  studio in-process, the permission gate, progress as status events, results as chat files).
* ``pipe.py`` (``class Pipe``, a manifold of image models) and ``action.py`` (``class Action``, a
  message button): Open WebUI *functions*, installed with ids :data:`PIPE_ID` and
  :data:`ACTION_ID`, read with :func:`function_source`; they share :mod:`.chat_models`.
"""

from __future__ import annotations

from importlib import resources

TOOL_ID = "image_studio"
"""Open WebUI id of the Tool (``/api/v1/tools/id/image_studio``)."""

TOOL_NAME = "Image Studio"

SOURCES = {TOOL_ID: "tool.py"}
"""Plugin id -> source file in this package."""


PIPE_ID = "image_studio"
"""Open WebUI function id of the Pipe (a manifold: its models are ``image_studio.provider.<id>``
and ``image_studio.workflow.<name>``). Functions and tools are kept apart, so it may share the
Tool's id."""

PIPE_NAME = "Image Studio"

ACTION_ID = "image_studio_action"
"""Open WebUI function id of the Action ("Generate image from this message")."""

ACTION_NAME = "Generate image from this message"

FUNCTION_SOURCES = {PIPE_ID: "pipe.py", ACTION_ID: "action.py"}
"""Function id -> source file in this package (the Pipe and the Action, see :mod:`.chat_models`)."""


def function_source(function_id: str) -> str:
    """The Python source text of function ``function_id`` (one of :data:`FUNCTION_SOURCES`).

    Raises:
        KeyError: an unknown function id.
    """
    return resources.files(__name__).joinpath(FUNCTION_SOURCES[function_id]).read_text(encoding="utf-8")


def plugin_source(plugin_id: str) -> str:
    """The Python source text of plugin ``plugin_id`` (one of :data:`SOURCES`).

    Raises:
        KeyError: an unknown plugin id.
    """
    return resources.files(__name__).joinpath(SOURCES[plugin_id]).read_text(encoding="utf-8")


def plugin_description(source: str) -> str:
    """The ``description:`` line of a plugin's front matter (Open WebUI shows it), or ``""``."""
    for line in source.splitlines()[1:40]:
        if line.strip() == '"""':
            break
        key, sep, value = line.partition(":")
        if sep and key.strip() == "description":
            return value.strip()
    return ""
