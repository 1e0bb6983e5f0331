"""API-format test graphs, shaped like the recorded ones (``tests/fixtures/comfyui/``).

Each graph gets a random EmptyImage colour unless one is given, so that ComfyUI's node cache
(real or faked) does not turn a run into a cached rerun.
"""

from __future__ import annotations

import json
import random
from pathlib import Path
from typing import Any

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "comfyui"


def fixture(name: str) -> Any:
    """A recorded transcript or data file, parsed."""
    return json.loads((FIXTURES / f"{name}.json").read_text(encoding="utf-8"))


def recorded_requests(name: str, path: str = "/prompt", status: int | None = None) -> list[dict[str, Any]]:
    """The HTTP exchanges of one fixture for ``path`` (and ``status``), in order."""
    return [ex for ex in fixture(name)["exchanges"]
            if ex["kind"] == "http" and ex["path"] == path and (status is None or ex["status"] == status)]


def _color(color: int | None) -> int:
    return random.randrange(1, 0xFFFFFF) if color is None else color


def invert(*, prefix: str = "studio_test", width: int = 64, height: int = 64, batch: int = 1,
           color: int | None = None) -> dict[str, Any]:
    """EmptyImage -> ImageInvert -> SaveImage (success_invert.json)."""
    return {"1": {"class_type": "EmptyImage", "inputs": {"width": width, "height": height, "batch_size": batch,
                                                          "color": _color(color)}},
            "2": {"class_type": "ImageInvert", "inputs": {"image": ["1", 0]}},
            "3": {"class_type": "SaveImage", "inputs": {"images": ["2", 0], "filename_prefix": prefix}}}


def sleep(*, steps: int = 4, step_seconds: float = 0.25, preview: bool = True, text: bool = True,
          prefix: str = "studio_progress_test", color: int | None = None) -> dict[str, Any]:
    """EmptyImage -> FixtureSleepProgress -> SaveImage (progress_preview_*.json)."""
    graph = invert(prefix=prefix, color=color)
    graph["2"] = {"class_type": "FixtureSleepProgress",
                  "inputs": {"image": ["1", 0], "steps": steps, "step_seconds": step_seconds, "preview": preview,
                             "progress_text": text}}
    return graph


def raising(*, message: str = "fixture failure requested", color: int | None = None) -> dict[str, Any]:
    """EmptyImage -> FixtureRaiseError -> SaveImage (execution_error.json)."""
    graph = invert(prefix="studio_err_test", color=color)
    graph["2"] = {"class_type": "FixtureRaiseError", "inputs": {"image": ["1", 0], "message": message}}
    return graph


def template(graph: dict[str, Any], name: str = "test", **slots: list[list[str]]) -> dict[str, Any]:
    """An inline workflow template around ``graph``."""
    return {"name": name, "prompt": graph, "slots": slots or {"width": [["1", "width"]], "height": [["1", "height"]],
                                                               "batch_size": [["1", "batch_size"]]}}
