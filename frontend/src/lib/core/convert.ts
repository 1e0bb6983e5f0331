/**
 * ComfyUI workflow formats:
 *
 * - UI format (what ComfyUI's editor saves): `nodes` with `id`, `type`, `inputs` (`link`),
 *   `outputs` (`links`), `widgets_values`, `mode`; `links` as
 *   `[id, from_node, from_slot, to_node, to_slot, type]` (or schema-1 objects).
 * - API format (what `/prompt` takes): `{node_id: {class_type, inputs: {name: value |
 *   [from_node_id, output_index]}, _meta: {title}}}`.
 * - The editor graph ({@link EditorGraph}): nodes with a position and widget values, links by
 *   input name.
 *
 * {@link uiToApi} follows the backend's `providers/comfyui/convert.py` rule for rule, so both
 * agree: execution order (Kahn over links, ties by the saved `order`), widgets first (in
 * `input_order`) then links, `control_after_generate`/upload values skipped, missing widgets
 * get defaults, list values wrapped as `{"__value__": [...]}`, muted (2) / bypassed (4) nodes
 * left out (bypassed ones wired through by type), Reroute followed, PrimitiveNode inlined,
 * notes ignored, `_meta.title` = title or display name, dangling links dropped.
 */
import { inputSpecs, inputDef, defaultOf, nodeSpec, type ObjectInfo } from "./objectInfo";

export const MODE_MUTED = 2;
export const MODE_BYPASS = 4;
export const VIRTUAL_TYPES = new Set(["Note", "MarkdownNote", "Reroute", "PrimitiveNode"]);

/** An input value in API format: a literal, or a link `[from_node_id, output_index]`. */
export type ApiInput = unknown;
export interface ApiNode {
  class_type: string;
  inputs: Record<string, ApiInput>;
  _meta?: { title?: string };
}
/** An API-format prompt: node id -> node. */
export type ApiPrompt = Record<string, ApiNode>;

export interface UiSlot {
  name: string;
  type?: string;
  link?: number | null;
  links?: number[] | null;
  widget?: { name: string };
  [k: string]: unknown;
}
export interface UiNode {
  id: number | string;
  type: string;
  title?: string;
  pos?: [number, number] | { 0: number; 1: number };
  order?: number;
  mode?: number;
  inputs?: UiSlot[];
  outputs?: UiSlot[];
  widgets_values?: unknown[] | Record<string, unknown>;
  [k: string]: unknown;
}
export type UiLinkArray = [number, number | string, number, number | string, number, string];
export interface UiLinkObject {
  id: number;
  origin_id: number | string;
  origin_slot: number;
  target_id: number | string;
  target_slot: number;
  type?: string;
}
/** A UI-format (litegraph) workflow. */
export interface UiWorkflow {
  nodes: UiNode[];
  links: (UiLinkArray | UiLinkObject)[];
  [k: string]: unknown;
}

/** A link: origin id, origin slot, target id, target slot, type. */
type Link = [string, number, string, number, string];

/** Not a workflow in a format this module knows (`field` names the part at fault). */
export class WorkflowFormatError extends Error {
  constructor(
    message: string,
    public field: string = "workflow",
  ) {
    super(message);
    this.name = "WorkflowFormatError";
  }
}

/** True for a litegraph UI workflow (a `nodes` list and `links`). */
export function isUiWorkflow(data: unknown): data is UiWorkflow {
  return !!data && typeof data === "object" && Array.isArray((data as UiWorkflow).nodes) && "links" in (data as object);
}

/** True for an API-format prompt (non-empty, every value an object with a class_type). */
export function isApiPrompt(data: unknown): data is ApiPrompt {
  if (!data || typeof data !== "object" || Array.isArray(data)) return false;
  const values = Object.values(data as object);
  return values.length > 0 && values.every((v) => !!v && typeof v === "object" && "class_type" in v);
}

/** True for an API-format link value `[node_id, output_index]`. */
export function isLink(value: unknown): value is [string, number] {
  return Array.isArray(value) && value.length === 2 && (typeof value[0] === "string" || typeof value[0] === "number") && typeof value[1] === "number";
}

function linksOf(ui: UiWorkflow): Map<number, Link> {
  const out = new Map<number, Link>();
  for (const item of ui.links ?? []) {
    if (Array.isArray(item) && item.length >= 6) {
      out.set(Number(item[0]), [String(item[1]), Number(item[2]), String(item[3]), Number(item[4]), String(item[5])]);
    } else if (item && typeof item === "object" && !Array.isArray(item)) {
      const o = item as UiLinkObject;
      out.set(Number(o.id), [String(o.origin_id), Number(o.origin_slot), String(o.target_id), Number(o.target_slot), String(o.type ?? "*")]);
    }
  }
  return out;
}

/** Nodes in litegraph's execution order (Kahn's algorithm; ties by the saved `order`; nodes in
 * cycles appended at the end). */
export function executionOrder(nodes: UiNode[], links: Map<number, Link>): UiNode[] {
  const ranked = nodes.map((n, i) => [i, n] as const).sort((a, b) => (a[1].order ?? a[0]) - (b[1].order ?? b[0]) || a[0] - b[0]);
  const byId = new Map<string, UiNode>();
  for (const [, n] of ranked) byId.set(String(n.id), n);
  const remaining = new Map<string, number>();
  for (const [id, n] of byId) {
    remaining.set(id, (n.inputs ?? []).filter((i) => i.link !== null && i.link !== undefined && links.has(i.link)).length);
  }
  const queue = [...remaining].filter(([, c]) => c === 0).map(([id]) => id);
  const done: string[] = [];
  const seen = new Set<string>();
  while (queue.length) {
    const id = queue.shift()!;
    done.push(id);
    seen.add(id);
    for (const output of byId.get(id)!.outputs ?? []) {
      for (const linkId of output.links ?? []) {
        const link = links.get(linkId);
        if (!link || !remaining.has(link[2])) continue;
        const left = remaining.get(link[2])! - 1;
        remaining.set(link[2], left);
        if (left === 0) queue.push(link[2]);
      }
    }
  }
  for (const id of byId.keys()) if (!seen.has(id)) done.push(id);
  return done.map((id) => byId.get(id)!);
}

function wrap(value: unknown): unknown {
  return Array.isArray(value) ? { __value__: value } : value;
}

function widgetInputs(node: UiNode, info: ObjectInfo[string]): Record<string, unknown> {
  const values = node.widgets_values;
  const inputs: Record<string, unknown> = {};
  let index = 0;
  for (const [name, spec, required] of inputSpecs(info)) {
    const def = inputDef(name, spec, required);
    if (def.widget === null) continue;
    let value: unknown;
    if (values && !Array.isArray(values) && typeof values === "object") {
      value = name in values ? values[name] : defaultOf(spec);
    } else if (Array.isArray(values) && index < values.length) {
      value = values[index];
      index += 1 + def.extraValues;
    } else {
      value = defaultOf(spec);
    }
    inputs[name] = wrap(value);
  }
  return inputs;
}

type Resolved = ["link", [string, number]] | ["value", unknown] | null;

class Resolver {
  constructor(
    private nodes: Map<string, UiNode>,
    private links: Map<number, Link>,
  ) {}

  resolve(linkId: number | null | undefined, depth = 0): Resolved {
    const link = linkId !== null && linkId !== undefined ? this.links.get(linkId) : undefined;
    if (!link || depth > 256) return null;
    const [originId, slot, , , linkType] = link;
    const origin = this.nodes.get(originId);
    if (!origin) return null;
    if (origin.type === "Reroute") {
      const inputs = origin.inputs ?? [];
      return this.resolve(inputs.length ? inputs[0].link : null, depth + 1);
    }
    if (origin.type === "PrimitiveNode") {
      const values = Array.isArray(origin.widgets_values) ? origin.widgets_values : [];
      return values.length ? ["value", values[0]] : null;
    }
    if (origin.mode === MODE_BYPASS) return this.throughBypass(origin, slot, linkType, depth);
    return ["link", [originId, slot]];
  }

  private throughBypass(node: UiNode, slot: number, linkType: string, depth: number): Resolved {
    const inputs = node.inputs ?? [];
    const candidates = inputs.map((inp, i) => [inp, i] as const).filter(([inp]) => inp.type === linkType || inp.type === "*").map(([, i]) => i);
    candidates.sort((a, b) => Number(a !== slot) - Number(b !== slot) || a - b);
    for (const i of candidates) {
      const found = this.resolve(inputs[i].link, depth + 1);
      if (found) return found;
    }
    return null;
  }
}

/**
 * Convert a UI-format workflow to an API prompt, as the backend's `ui_to_api` does.
 * @param ui the editor's saved JSON (`{nodes, links, ...}`)
 * @param info `/object_info` (at least every node type used)
 * @throws WorkflowFormatError not a UI workflow, or a node type `info` lacks (field `workflow.nodes.<id>.type`)
 */
export function uiToApi(ui: unknown, info: ObjectInfo): ApiPrompt {
  if (!isUiWorkflow(ui)) throw new WorkflowFormatError("not a UI-format workflow (needs 'nodes' and 'links')");
  const links = linksOf(ui);
  const byId = new Map(ui.nodes.map((n) => [String(n.id), n] as const));
  const resolver = new Resolver(byId, links);
  const output: ApiPrompt = {};
  for (const node of executionOrder(ui.nodes, links)) {
    const id = String(node.id);
    const cls = String(node.type);
    if (node.mode === MODE_MUTED || node.mode === MODE_BYPASS || VIRTUAL_TYPES.has(cls)) continue;
    const def = info[cls];
    if (!def) {
      throw new WorkflowFormatError(`node ${id} has type '${cls}', which this ComfyUI does not have (a missing custom node?)`, `workflow.nodes.${id}.type`);
    }
    const inputs = widgetInputs(node, def);
    for (const slot of node.inputs ?? []) {
      const found = resolver.resolve(slot.link);
      if (!found) continue;
      inputs[slot.name] = found[0] === "value" ? wrap(found[1]) : found[1];
    }
    output[id] = { inputs, class_type: cls, _meta: { title: node.title || def.display_name || cls } };
  }
  for (const entry of Object.values(output)) {
    for (const [name, value] of Object.entries(entry.inputs)) {
      if (isLink(value) && !(String(value[0]) in output)) delete entry.inputs[name];
    }
  }
  return output;
}

// ------------------------------------------------------------------------------ editor graph

/** A node of the editor graph. `values` holds widget values by input name; `converted` lists
 * widget inputs turned into sockets (they take a link instead of a value). */
export interface EditorNode {
  id: string;
  classType: string;
  title?: string;
  position: { x: number; y: number };
  values: Record<string, unknown>;
  converted: string[];
}

/** A link of the editor graph: output `fromSlot` of node `from` into input `toInput` of node `to`. */
export interface EditorLink {
  id: string;
  from: string;
  fromSlot: number;
  to: string;
  toInput: string;
  type: string;
}

export interface EditorGraph {
  nodes: EditorNode[];
  links: EditorLink[];
}

/** The id of a link (stable for a given source and target input). */
export function linkId(from: string, fromSlot: number, to: string, toInput: string): string {
  return `${from}:${fromSlot}->${to}:${toInput}`;
}

/** Depth of each node: 0 for nodes fed by nothing, else 1 + the deepest node feeding it
 * (cycles broken). */
export function depths(ids: string[], edges: [string, string][]): Map<string, number> {
  const feeders = new Map<string, string[]>(ids.map((id) => [id, []]));
  for (const [from, to] of edges) if (feeders.has(to) && feeders.has(from)) feeders.get(to)!.push(from);
  const memo = new Map<string, number>();
  const visiting = new Set<string>();
  const depth = (id: string): number => {
    if (memo.has(id)) return memo.get(id)!;
    if (visiting.has(id)) return 0;
    visiting.add(id);
    const d = Math.max(-1, ...feeders.get(id)!.map(depth)) + 1;
    visiting.delete(id);
    memo.set(id, d);
    return d;
  };
  for (const id of ids) depth(id);
  return memo;
}

/** Horizontal and vertical spacing of the automatic layout, in pixels. */
export const LAYOUT = { column: 340, row: 260, x0: 20, y0: 20 };

/**
 * An API prompt as an editor graph: nodes laid out left to right by depth (one column per
 * depth, in id order), links from `[from, index]` inputs (typed from `info` when it knows the
 * origin's output, else `*`), widget inputs that hold a link marked converted.
 */
export function apiToGraph(api: ApiPrompt, info: ObjectInfo = {}): EditorGraph {
  const ids = Object.keys(api);
  const links: EditorLink[] = [];
  const nodes: EditorNode[] = [];
  for (const id of ids) {
    const node = api[id];
    const spec = nodeSpec(info, node.class_type);
    const values: Record<string, unknown> = {};
    const converted: string[] = [];
    for (const [name, value] of Object.entries(node.inputs ?? {})) {
      if (isLink(value)) {
        const from = String(value[0]);
        const out = nodeSpec(info, api[from]?.class_type ?? "")?.outputs[value[1]];
        links.push({ id: linkId(from, value[1], id, name), from, fromSlot: value[1], to: id, toInput: name, type: out?.type ?? "*" });
        if (spec?.inputs.find((i) => i.name === name)?.widget) converted.push(name);
      } else {
        values[name] = value;
      }
    }
    const title = node._meta?.title;
    nodes.push({ id, classType: node.class_type, ...(title && title !== spec?.displayName ? { title } : {}), position: { x: 0, y: 0 }, values, converted });
  }
  layout(nodes, links);
  return { nodes, links };
}

/** Place nodes left to right by depth (see {@link LAYOUT}); changes `nodes` in place. */
export function layout(nodes: EditorNode[], links: EditorLink[]): void {
  const d = depths(nodes.map((n) => n.id), links.map((l) => [l.from, l.to]));
  const rows = new Map<number, number>();
  const sorted = [...nodes].sort((a, b) => (d.get(a.id)! - d.get(b.id)!) || compareIds(a.id, b.id));
  for (const n of sorted) {
    const col = d.get(n.id) ?? 0;
    const row = rows.get(col) ?? 0;
    rows.set(col, row + 1);
    n.position = { x: LAYOUT.x0 + col * LAYOUT.column, y: LAYOUT.y0 + row * LAYOUT.row };
  }
}

/** Order node ids numerically when both are numbers, else as text. */
export function compareIds(a: string, b: string): number {
  const na = Number(a), nb = Number(b);
  return Number.isFinite(na) && Number.isFinite(nb) ? na - nb : a.localeCompare(b);
}

/** A UI-format workflow as an editor graph (converted to API format with `info`, keeping each
 * node's saved position when it has one). @throws WorkflowFormatError as {@link uiToApi}. */
export function uiToGraph(ui: unknown, info: ObjectInfo): EditorGraph {
  const api = uiToApi(ui, info);
  const graph = apiToGraph(api, info);
  const pos = new Map((ui as UiWorkflow).nodes.map((n) => [String(n.id), n.pos] as const));
  for (const node of graph.nodes) {
    const p = pos.get(node.id) as unknown;
    if (Array.isArray(p) && typeof p[0] === "number" && typeof p[1] === "number") node.position = { x: p[0], y: p[1] };
    else if (p && typeof p === "object" && typeof (p as Record<string, number>)[0] === "number") {
      node.position = { x: (p as Record<string, number>)[0], y: (p as Record<string, number>)[1] };
    }
  }
  return graph;
}

/**
 * The editor graph in API format: per node, widget values (converted widgets left out) then
 * links as `[from_id, output_index]`; `_meta.title` = the node's title, else the display name
 * from `info`, else the class. Nodes come in id order.
 */
export function graphToApi(graph: EditorGraph, info: ObjectInfo = {}): ApiPrompt {
  const out: ApiPrompt = {};
  const nodes = [...graph.nodes].sort((a, b) => compareIds(a.id, b.id));
  for (const node of nodes) {
    const inputs: Record<string, unknown> = {};
    for (const [name, value] of Object.entries(node.values)) if (!node.converted.includes(name)) inputs[name] = value;
    for (const link of graph.links) if (link.to === node.id) inputs[link.toInput] = [link.from, link.fromSlot];
    const title = node.title || info[node.classType]?.display_name || node.classType;
    out[node.id] = { inputs, class_type: node.classType, _meta: { title } };
  }
  return out;
}

/** A new node of `classType` with every widget at its default, at `position`.
 * @throws WorkflowFormatError when `info` lacks the class. */
export function newNode(info: ObjectInfo, classType: string, id: string, position = { x: 0, y: 0 }): EditorNode {
  const spec = nodeSpec(info, classType);
  if (!spec) throw new WorkflowFormatError(`unknown node type '${classType}'`);
  const values: Record<string, unknown> = {};
  for (const input of spec.inputs) if (input.widget && input.default !== undefined) values[input.name] = input.default;
  return { id, classType, position, values, converted: [] };
}

/** The next free numeric node id of a graph ("1" for an empty one). */
export function nextNodeId(graph: EditorGraph): string {
  let max = 0;
  for (const n of graph.nodes) {
    const v = Number(n.id);
    if (Number.isInteger(v) && v > max) max = v;
  }
  return String(max + 1);
}
