"""UI-format (litegraph) workflows to ComfyUI's API format, as the web frontend does it.

Followed: the frontend's ``graphToPrompt`` (``src/utils/executionUtil.ts`` in
Comfy-Org/ComfyUI_frontend) and litegraph's ``LGraph.computeExecutionOrder``:

* nodes come out in execution order (Kahn's algorithm over the links, starting nodes taken
  in the graph's saved ``order``);
* per node, widget values first (in ``/object_info`` ``input_order``: required, then
  optional), then linked inputs as ``[origin_id, origin_slot]``; a link to a converted
  widget overrides its value;
* the extra ``control_after_generate`` value after an INT with that option (and after
  ``seed`` / ``noise_seed``) is skipped, as is the upload button's value after a combo with
  ``image_upload`` (or another ``*_upload``) set;
* widgets missing from ``widgets_values`` get their ``/object_info`` default (the first
  choice for a combo);
* a list value is wrapped as ``{"__value__": [...]}`` (a bare list means a link);
* muted nodes (mode 2) are left out and links to them dropped; bypassed nodes (mode 4) are
  left out and their consumers wired to the bypassed node's input of the same type;
  ``Reroute`` nodes are followed, ``PrimitiveNode`` values are inlined, notes ignored;
* ``_meta.title`` is the node's title, else its display name.
"""

from __future__ import annotations

from collections import deque
from typing import Any

from ...errors import InvalidRequest

MODE_MUTED = 2
MODE_BYPASS = 4
WIDGET_TYPES = {"INT", "FLOAT", "STRING", "BOOLEAN", "COMBO"}
CONTROL_NAMES = {"seed", "noise_seed"}
VIRTUAL_TYPES = {"Note", "MarkdownNote", "Reroute", "PrimitiveNode"}

Link = tuple[str, int, str, int, str]  # origin id, origin slot, target id, target slot, type


def is_ui_workflow(data: Any) -> bool:
    """True for a litegraph UI workflow (``nodes`` list and ``links``)."""
    return isinstance(data, dict) and isinstance(data.get("nodes"), list) and "links" in data


def _links(ui: dict[str, Any]) -> dict[int, Link]:
    out: dict[int, Link] = {}
    for item in ui.get("links") or []:
        if isinstance(item, list) and len(item) >= 6:
            out[int(item[0])] = (str(item[1]), int(item[2]), str(item[3]), int(item[4]), str(item[5]))
        elif isinstance(item, dict):
            out[int(item["id"])] = (str(item["origin_id"]), int(item["origin_slot"]), str(item["target_id"]),
                                    int(item["target_slot"]), str(item.get("type", "*")))
    return out


def execution_order(nodes: list[dict[str, Any]], links: dict[int, Link]) -> list[dict[str, Any]]:
    """Nodes in litegraph's execution order (Kahn; ties by the saved ``order``)."""
    ranked = sorted(enumerate(nodes), key=lambda p: (p[1].get("order", p[0]), p[0]))
    by_id = {str(n["id"]): n for _, n in ranked}
    remaining = {nid: sum(1 for i in n.get("inputs") or [] if i.get("link") is not None and i["link"] in links)
                 for nid, n in by_id.items()}
    start = deque(nid for nid, count in remaining.items() if count == 0)
    done: list[str] = []
    while start:
        nid = start.popleft()
        done.append(nid)
        for output in by_id[nid].get("outputs") or []:
            for link_id in output.get("links") or []:
                link = links.get(link_id)
                if link is None or link[2] not in remaining:
                    continue
                remaining[link[2]] -= 1
                if remaining[link[2]] == 0:
                    start.append(link[2])
    done += [nid for nid in by_id if nid not in done]  # cycles, as litegraph appends them
    return [by_id[nid] for nid in done]


def _input_specs(info: dict[str, Any]) -> list[tuple[str, list[Any]]]:
    inputs = info.get("input") or {}
    order = info.get("input_order") or {}
    specs: list[tuple[str, list[Any]]] = []
    for group in ("required", "optional"):
        defs = inputs.get(group) or {}
        for name in order.get(group) or list(defs):
            if name in defs:
                spec = defs[name]
                specs.append((name, spec if isinstance(spec, list) else [spec]))
    return specs


def _options(spec: list[Any]) -> dict[str, Any]:
    return spec[1] if len(spec) > 1 and isinstance(spec[1], dict) else {}


def _is_widget(spec: list[Any]) -> bool:
    head = spec[0] if spec else None
    return (isinstance(head, list) or head in WIDGET_TYPES) and not _options(spec).get("forceInput")


def _default(spec: list[Any]) -> Any:
    opts = _options(spec)
    if "default" in opts:
        return opts["default"]
    head = spec[0]
    choices = head if isinstance(head, list) else opts.get("options") if head == "COMBO" else None
    if choices:
        return choices[0]
    return {"INT": 0, "FLOAT": 0.0, "STRING": "", "BOOLEAN": False}.get(head)


def _extra_values(name: str, spec: list[Any]) -> int:
    opts = _options(spec)
    extra = 0
    if spec[0] == "INT" and (opts.get("control_after_generate") or name in CONTROL_NAMES):
        extra += 1
    extra += sum(1 for k, v in opts.items() if k.endswith("_upload") and v is True)
    return extra


def _widget_inputs(node: dict[str, Any], info: dict[str, Any]) -> dict[str, Any]:
    values = node.get("widgets_values")
    inputs: dict[str, Any] = {}
    index = 0
    for name, spec in _input_specs(info):
        if not _is_widget(spec):
            continue
        if isinstance(values, dict):
            value = values.get(name, _default(spec))
        elif isinstance(values, list) and index < len(values):
            value = values[index]
            index += 1 + _extra_values(name, spec)
        else:
            value = _default(spec)
        inputs[name] = {"__value__": value} if isinstance(value, list) else value
    return inputs


class _Resolver:
    """Follows a link back to the node that really feeds it."""

    def __init__(self, nodes: dict[str, dict[str, Any]], links: dict[int, Link]) -> None:
        self.nodes = nodes
        self.links = links

    def resolve(self, link_id: int | None, depth: int = 0) -> tuple[str, Any] | None:
        """``("link", [origin_id, slot])``, ``("value", v)`` or None (nothing feeds it)."""
        link = self.links.get(link_id) if link_id is not None else None
        if link is None or depth > 256:
            return None
        origin_id, slot, _, _, link_type = link
        origin = self.nodes.get(origin_id)
        if origin is None:
            return None
        if origin.get("type") == "Reroute":
            inputs = origin.get("inputs") or []
            return self.resolve(inputs[0].get("link") if inputs else None, depth + 1)
        if origin.get("type") == "PrimitiveNode":
            values = origin.get("widgets_values") or []
            return ("value", values[0]) if values else None
        if origin.get("mode") == MODE_BYPASS:
            return self._through_bypass(origin, slot, link_type, depth)
        return ("link", [origin_id, slot])

    def _through_bypass(self, node: dict[str, Any], slot: int, link_type: str, depth: int) -> tuple[str, Any] | None:
        inputs = node.get("inputs") or []
        candidates = [i for i, inp in enumerate(inputs) if inp.get("type") in (link_type, "*")]
        candidates.sort(key=lambda i: (i != slot, i))
        for i in candidates:
            found = self.resolve(inputs[i].get("link"), depth + 1)
            if found is not None:
                return found
        return None


def ui_to_api(ui_workflow: dict[str, Any], object_info: dict[str, Any]) -> dict[str, Any]:
    """Convert a UI-format workflow (the frontend's saved ``.json``) to an API prompt.

    Args:
        ui_workflow: ``{"nodes": [...], "links": [...], ...}`` (schema 0.4 link arrays or
            schema 1 link objects).
        object_info: ``GET /object_info`` of the backend (at least every node type used).

    Raises:
        InvalidRequest: not a UI workflow, or a node type the backend does not know (field
            ``workflow.nodes.<id>.type``).
    """
    if not is_ui_workflow(ui_workflow):
        raise InvalidRequest("not a UI-format workflow (needs 'nodes' and 'links')", field="workflow")
    nodes = ui_workflow["nodes"]
    links = _links(ui_workflow)
    by_id = {str(n["id"]): n for n in nodes}
    resolver = _Resolver(by_id, links)
    output: dict[str, Any] = {}
    for node in execution_order(nodes, links):
        node_id, cls = str(node["id"]), str(node.get("type"))
        if node.get("mode") in (MODE_MUTED, MODE_BYPASS) or cls in VIRTUAL_TYPES:
            continue
        info = object_info.get(cls)
        if info is None:
            raise InvalidRequest(f"node {node_id} has type {cls!r}, which this ComfyUI does not have "
                                 "(a missing custom node?)", field=f"workflow.nodes.{node_id}.type")
        inputs = _widget_inputs(node, info)
        for slot in node.get("inputs") or []:
            found = resolver.resolve(slot.get("link"))
            if found is None:
                continue
            kind, value = found
            inputs[slot["name"]] = ({"__value__": value} if isinstance(value, list) else value) \
                if kind == "value" else value
        title = node.get("title") or info.get("display_name") or cls
        output[node_id] = {"inputs": inputs, "class_type": cls, "_meta": {"title": title}}
    for entry in output.values():
        for name, value in list(entry["inputs"].items()):
            if isinstance(value, list) and len(value) == 2 and str(value[0]) not in output:
                del entry["inputs"][name]
    return output
