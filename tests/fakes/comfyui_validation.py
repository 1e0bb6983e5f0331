"""How the fake ComfyUI validates a prompt, as ComfyUI's ``execution.validate_prompt`` answers
(error types and texts as recorded in ``tests/fixtures/comfyui/validation_error_*.json``), and
the recorded answers it replays verbatim for the recorded prompts.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "comfyui"
WIDGETS = {"INT", "FLOAT", "STRING", "BOOLEAN"}
REJECTION_FIXTURES = ("validation_error_missing_input", "validation_error_bad_value", "prompt_no_outputs",
                      "validation_error_invalid_prompt", "validation_error_missing_model", "upload_image")


def load_fixture(name: str) -> Any:
    """A recorded fixture file, parsed (``name`` without ``.json``)."""
    return json.loads((FIXTURES / f"{name}.json").read_text(encoding="utf-8"))


def canonical(prompt: Any) -> str:
    """A prompt as canonical JSON, to compare with the recorded ones."""
    return json.dumps(prompt, sort_keys=True, separators=(",", ":"))


def recorded_rejections() -> dict[str, list[tuple[str, dict[str, Any]]]]:
    """``{fixture: [(canonical prompt, 400 body), ...]}`` for every recorded refused POST /prompt."""
    out: dict[str, list[tuple[str, dict[str, Any]]]] = {}
    for name in REJECTION_FIXTURES:
        for ex in load_fixture(name)["exchanges"]:
            if ex["kind"] == "http" and ex["path"] == "/prompt" and ex["method"] == "POST" and ex["status"] == 400:
                out.setdefault(name, []).append((canonical(ex["request_json"].get("prompt")), ex["response_json"]))
    return out


def recorded_http(name: str, path: str) -> Any:
    """The recorded JSON answer of the first ``path`` exchange in fixture ``name``."""
    return next(ex["response_json"] for ex in load_fixture(name)["exchanges"]
                if ex["kind"] == "http" and ex["path"] == path)


def _err(kind: str, message: str, details: str, **extra: Any) -> dict[str, Any]:
    return {"type": kind, "message": message, "details": details, "extra_info": extra}


def is_link(value: Any) -> bool:
    return isinstance(value, list) and len(value) == 2 and isinstance(value[1], int)


def _check_value(cls: str, name: str, spec: list[Any], value: Any, uploads: set[str]) -> dict[str, Any] | None:
    head, opts = spec[0], spec[1] if len(spec) > 1 and isinstance(spec[1], dict) else {}
    if isinstance(head, list):
        if cls == "LoadImage" and name == "image":
            return None if value in head or value in uploads else _err(
                "custom_validation_failed", "Custom validation failed for node",
                f"{name} - Invalid image file: {value}", input_name=name)
        if value not in head:
            return _err("value_not_in_list", "Value not in list", f"{name}: '{value}' not in {head!r}",
                        input_name=name, input_config=spec, received_value=value)
        return None
    if head in ("INT", "FLOAT"):
        try:
            number = int(value) if head == "INT" else float(value)
        except (TypeError, ValueError) as exc:
            return _err("invalid_input_type", f"Failed to convert an input value to a {head} value",
                        f"{name}, {value}, {exc}", input_name=name, input_config=spec, received_value=value,
                        exception_message=str(exc))
        if "min" in opts and number < opts["min"]:
            return _err("value_smaller_than_min", f"Value {number} smaller than min of {opts['min']}", name,
                        input_name=name, input_config=spec, received_value=value)
        if "max" in opts and number > opts["max"]:
            return _err("value_bigger_than_max", f"Value {number} bigger than max of {opts['max']}", name,
                        input_name=name, input_config=spec, received_value=value)
    return None


def _node_errors(prompt: dict[str, Any], nid: str, info: dict[str, Any], uploads: set[str]) -> list[dict[str, Any]]:
    node = prompt[nid]
    inputs = node.get("inputs") or {}
    errors = []
    for group in ("required", "optional"):
        for name, spec in ((info.get("input") or {}).get(group) or {}).items():
            if name not in inputs:
                if group == "required":
                    errors.append(_err("required_input_missing", "Required input is missing", name, input_name=name))
                continue
            value = inputs[name]
            if is_link(value):
                if str(value[0]) not in prompt:
                    errors.append(_err("exception_during_inner_validation", "Exception when validating inner node",
                                       repr(str(value[0])), input_name=name, input_config=spec,
                                       exception_message=repr(str(value[0])), exception_type="KeyError",
                                       traceback=[], linked_node=[nid, value[1]]))
            elif isinstance(spec[0], list) or spec[0] in WIDGETS:
                found = _check_value(node["class_type"], name, spec, value, uploads)
                if found:
                    errors.append(found)
    return errors


def ancestors(prompt: dict[str, Any], start: str) -> list[str]:
    order: list[str] = []

    def visit(nid: str) -> None:
        if nid in order or nid not in prompt:
            return
        for value in (prompt[nid].get("inputs") or {}).values():
            if is_link(value):
                visit(str(value[0]))
        order.append(nid)

    visit(start)
    return order


def validate_prompt(prompt: Any, object_info: dict[str, Any], uploads: set[str]
                    ) -> tuple[dict[str, Any] | None, dict[str, Any], list[str]]:
    """``(fatal error or None, node_errors, outputs that passed)``, as ComfyUI validates."""
    if not isinstance(prompt, dict):
        return _err("invalid_prompt", "Prompt is not a dict", ""), {}, []
    for nid, node in prompt.items():
        if not isinstance(node, dict) or "class_type" not in node:
            return _err("invalid_prompt", "Cannot execute because a node is missing the class_type property.",
                        f"Node ID '#{nid}'"), {}, []
        if node["class_type"] not in object_info:
            return _err("invalid_prompt", f"Cannot execute because node {node['class_type']} does not exist.",
                        f"Node ID '#{nid}'"), {}, []
    outputs = [nid for nid, node in prompt.items() if object_info[node["class_type"]].get("output_node")]
    if not outputs:
        return _err("prompt_no_outputs", "Prompt has no outputs", ""), {}, []
    found: dict[str, list[dict[str, Any]]] = {}
    dependents: dict[str, list[str]] = {}
    good = []
    for out in outputs:
        bad = False
        for nid in ancestors(prompt, out):
            if nid not in found:
                found[nid] = _node_errors(prompt, nid, object_info[prompt[nid]["class_type"]], uploads)
            if found[nid]:
                dependents.setdefault(nid, []).append(out)
                bad = True
        if not bad:
            good.append(out)
    node_errors = {nid: {"errors": found[nid], "dependent_outputs": deps, "class_type": prompt[nid]["class_type"]}
                   for nid, deps in dependents.items()}
    return None, node_errors, good
