/**
 * Exposed parameters of a workflow: the editor marks node inputs as parameters (a name, the
 * inputs it sets, and metadata: title, default, minimum, maximum, step, enum). They are saved
 * as the workflow's `slots` (`{name: [[node_id, input], ...]}`) and `params` (the metadata),
 * and published by the backend's `GET /workflows/{id}/parameters` as a JSON Schema that
 * {@link parametersSchema} reproduces.
 */
import type { ApiPrompt } from "./convert";
import { jsonType, nodeSpec, type ObjectInfo } from "./objectInfo";

export type JsonType = "integer" | "number" | "string" | "boolean";

/** Metadata of one parameter, as the backend's `ParamMetaIn`. */
export interface ParamMeta {
  type?: JsonType;
  title?: string;
  description?: string;
  default?: unknown;
  minimum?: number;
  maximum?: number;
  step?: number;
  enum?: unknown[];
}

/** An exposed parameter: where it goes and its metadata. */
export interface ExposedParam extends ParamMeta {
  targets: [string, string][];
}

export type ExposedParams = Record<string, ExposedParam>;

/** One property of the parameters' JSON Schema. */
export interface ParamProperty {
  type?: JsonType;
  title?: string;
  description?: string;
  default?: unknown;
  minimum?: number;
  maximum?: number;
  multipleOf?: number;
  enum?: unknown[];
}

export interface ParamsSchema {
  type: "object";
  title: string;
  description: string;
  properties: Record<string, ParamProperty>;
}

const IMAGE_SLOTS = new Set(["init_image", "mask"]);

function valueType(v: unknown): JsonType | undefined {
  if (typeof v === "boolean") return "boolean";
  if (typeof v === "number") return Number.isInteger(v) ? "integer" : "number";
  if (typeof v === "string") return "string";
  return undefined;
}

/**
 * The JSON Schema of exposed parameters, as `GET /workflows/{id}/parameters` answers it:
 * per parameter (image slots left out) `type` (the metadata's, else the default's, else the
 * graph value's), `title`, `description`, `default` (the metadata's, else the graph's value at
 * the first target), `minimum`, `maximum`, `multipleOf` (= step) and `enum`.
 */
export function parametersSchema(params: ExposedParams, prompt: ApiPrompt, title = "", description = ""): ParamsSchema {
  const properties: Record<string, ParamProperty> = {};
  for (const [name, p] of Object.entries(params)) {
    if (IMAGE_SLOTS.has(name)) continue;
    const [node, input] = p.targets[0] ?? ["", ""];
    const current = prompt[node]?.inputs?.[input];
    const dflt = p.default !== undefined && p.default !== null ? p.default : current;
    const prop: ParamProperty = { default: dflt ?? null };
    const type = p.type ?? valueType(dflt) ?? (p.enum?.length ? valueType(p.enum[0]) : undefined);
    if (type) prop.type = type;
    if (p.title !== undefined) prop.title = p.title;
    if (p.description !== undefined) prop.description = p.description;
    if (p.minimum !== undefined) prop.minimum = p.minimum;
    if (p.maximum !== undefined) prop.maximum = p.maximum;
    if (p.step !== undefined) prop.multipleOf = p.step;
    if (p.enum !== undefined) prop.enum = p.enum;
    properties[name] = prop;
  }
  return { type: "object", title, description, properties };
}

/** Split exposed parameters into the API's `slots` and `params` (metadata fields that are set). */
export function toSlotsAndParams(params: ExposedParams): { slots: Record<string, string[][]>; params: Record<string, ParamMeta> } {
  const slots: Record<string, string[][]> = {};
  const meta: Record<string, ParamMeta> = {};
  for (const [name, p] of Object.entries(params)) {
    slots[name] = p.targets.map(([n, i]) => [n, i]);
    const m: ParamMeta = {};
    for (const key of ["type", "title", "description", "default", "minimum", "maximum", "step", "enum"] as const) {
      const v = p[key];
      if (v !== undefined && v !== null && v !== "") (m as Record<string, unknown>)[key] = v;
    }
    if (Object.keys(m).length) meta[name] = m;
  }
  return { slots, params: meta };
}

/** Exposed parameters from a saved workflow's `slots` and `params`. */
export function fromSlotsAndParams(slots: Record<string, string[][]>, params: Record<string, ParamMeta> = {}): ExposedParams {
  const out: ExposedParams = {};
  for (const [name, targets] of Object.entries(slots)) {
    out[name] = { ...(params[name] ?? {}), targets: targets.map((t) => [String(t[0]), String(t[1])] as [string, string]) };
  }
  return out;
}

/**
 * A new exposed parameter for input `input` of node `nodeId`: type, bounds, step and (for a
 * COMBO) enum from `/object_info`, the title from the input name.
 */
export function exposeInput(info: ObjectInfo, prompt: ApiPrompt, nodeId: string, input: string): ExposedParam {
  const node = prompt[nodeId];
  const def = node ? nodeSpec(info, node.class_type)?.inputs.find((i) => i.name === input) : undefined;
  const p: ExposedParam = { targets: [[nodeId, input]], title: input.replace(/_/g, " ").replace(/^./, (c) => c.toUpperCase()) };
  const type = jsonType(def?.widget);
  if (type) p.type = type;
  if (def?.min !== undefined && (def.widget === "INT" || def.widget === "FLOAT")) p.minimum = def.min;
  if (def?.max !== undefined && (def.widget === "INT" || def.widget === "FLOAT")) p.maximum = def.max;
  if (def?.widget === "COMBO" && def.choices?.length) p.enum = [...def.choices];
  return p;
}

/** A free parameter name based on `base` (`steps`, `steps_2`, ...). */
export function freeName(params: ExposedParams, base: string): string {
  if (!(base in params)) return base;
  for (let i = 2; ; i++) if (!(`${base}_${i}` in params)) return `${base}_${i}`;
}

/** Problems of exposed parameters: a target node/input the prompt lacks, min above max, a
 * default outside the bounds or not in the enum. Messages name the parameter. */
export function checkParams(params: ExposedParams, prompt: ApiPrompt): { param: string; message: string }[] {
  const out: { param: string; message: string }[] = [];
  for (const [name, p] of Object.entries(params)) {
    if (!/^[\w.-]+$/.test(name)) out.push({ param: name, message: `parameter name '${name}' may only use letters, digits, _ . -` });
    for (const [n, i] of p.targets) {
      if (!prompt[n]) out.push({ param: name, message: `${name}: node ${n} does not exist` });
      else if (!(i in (prompt[n].inputs ?? {}))) out.push({ param: name, message: `${name}: node ${n} has no value input '${i}'` });
    }
    if (p.minimum !== undefined && p.maximum !== undefined && p.minimum > p.maximum) out.push({ param: name, message: `${name}: minimum is above maximum` });
    const d = p.default;
    if (typeof d === "number") {
      if (p.minimum !== undefined && d < p.minimum) out.push({ param: name, message: `${name}: default ${d} is below the minimum` });
      if (p.maximum !== undefined && d > p.maximum) out.push({ param: name, message: `${name}: default ${d} is above the maximum` });
    }
    if (d !== undefined && d !== null && p.enum && !p.enum.includes(d)) out.push({ param: name, message: `${name}: default is not one of the allowed values` });
  }
  return out;
}
