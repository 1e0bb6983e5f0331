/**
 * Node typing from ComfyUI's `GET /object_info`: which inputs a node class has (required,
 * optional), which are widgets (INT, FLOAT, STRING, BOOLEAN, COMBO = a list of choices) and
 * which are link sockets (any other type name), and its outputs.
 *
 * The rules follow the backend's `providers/comfyui/convert.py` (itself following ComfyUI's
 * frontend): inputs come in `input_order` (required, then optional); a widget spec with
 * `forceInput` is a socket; an INT with `control_after_generate` (or named seed/noise_seed) is
 * followed by an extra value in `widgets_values`, as is a combo with an `*_upload` option.
 */

/** One `/object_info` input spec: `[type | choices, options?]`. */
export type InputSpec = [unknown, Record<string, unknown>?] | unknown[];

/** One node class of `/object_info`. */
export interface NodeDef {
  input?: { required?: Record<string, InputSpec>; optional?: Record<string, InputSpec>; hidden?: Record<string, unknown> };
  input_order?: { required?: string[]; optional?: string[]; hidden?: string[] };
  output?: (string | string[])[];
  output_is_list?: boolean[];
  output_name?: string[];
  name?: string;
  display_name?: string;
  description?: string;
  category?: string;
  output_node?: boolean;
  python_module?: string;
}

/** The whole catalogue: class_type -> definition. */
export type ObjectInfo = Record<string, NodeDef>;

export const WIDGET_TYPES = ["INT", "FLOAT", "STRING", "BOOLEAN", "COMBO"] as const;
export type WidgetKind = (typeof WIDGET_TYPES)[number];
const CONTROL_NAMES = new Set(["seed", "noise_seed"]);

/** A typed input of a node class. */
export interface InputDef {
  name: string;
  /** The socket type name (`MODEL`, `IMAGE`, ...) or the widget kind (`INT`, `COMBO`, ...). */
  type: string;
  required: boolean;
  /** The widget kind when the input is a widget (a value typed in), else null (a socket). */
  widget: WidgetKind | null;
  /** The choices of a COMBO. */
  choices?: unknown[];
  default?: unknown;
  min?: number;
  max?: number;
  step?: number;
  multiline?: boolean;
  tooltip?: string;
  /** How many extra `widgets_values` entries follow this widget's value (control_after_generate, upload button). */
  extraValues: number;
}

/** A typed output socket. */
export interface OutputDef {
  index: number;
  name: string;
  type: string;
  isList: boolean;
}

/** A node class typed for the editor. */
export interface NodeSpec {
  classType: string;
  displayName: string;
  category: string;
  description: string;
  outputNode: boolean;
  inputs: InputDef[];
  outputs: OutputDef[];
}

function options(spec: InputSpec): Record<string, unknown> {
  const o = spec[1];
  return o && typeof o === "object" && !Array.isArray(o) ? (o as Record<string, unknown>) : {};
}

function num(v: unknown): number | undefined {
  return typeof v === "number" && Number.isFinite(v) ? v : undefined;
}

/** The input specs of a node class as `[name, spec, required]`, in `input_order`. */
export function inputSpecs(def: NodeDef): [string, InputSpec, boolean][] {
  const out: [string, InputSpec, boolean][] = [];
  for (const group of ["required", "optional"] as const) {
    const defs = def.input?.[group] ?? {};
    const order = def.input_order?.[group] ?? Object.keys(defs);
    for (const name of order) {
      if (name in defs) {
        const spec = defs[name];
        out.push([name, Array.isArray(spec) ? spec : [spec], group === "required"]);
      }
    }
  }
  return out;
}

/** Type one input spec: widget kind, choices, default, bounds. */
export function inputDef(name: string, spec: InputSpec, required: boolean): InputDef {
  const head = spec[0];
  const opts = options(spec);
  let widget: WidgetKind | null = null;
  let choices: unknown[] | undefined;
  if (Array.isArray(head)) {
    widget = "COMBO";
    choices = head;
  } else if (typeof head === "string" && (WIDGET_TYPES as readonly string[]).includes(head)) {
    widget = head as WidgetKind;
    if (head === "COMBO") choices = Array.isArray(opts.options) ? (opts.options as unknown[]) : [];
  }
  if (opts.forceInput) widget = null;
  const type = Array.isArray(head) ? "COMBO" : String(head);
  let extra = 0;
  if (type === "INT" && (opts.control_after_generate || CONTROL_NAMES.has(name))) extra += 1;
  for (const [k, v] of Object.entries(opts)) if (k.endsWith("_upload") && v === true) extra += 1;
  const def: InputDef = { name, type, required, widget, extraValues: extra };
  if (choices) def.choices = choices;
  const d = defaultOf(spec);
  if (d !== undefined) def.default = d;
  const min = num(opts.min), max = num(opts.max), step = num(opts.step);
  if (min !== undefined) def.min = min;
  if (max !== undefined) def.max = max;
  if (step !== undefined) def.step = step;
  if (opts.multiline) def.multiline = true;
  if (typeof opts.tooltip === "string") def.tooltip = opts.tooltip;
  return def;
}

/** The value a widget takes when none is given: its `default`, else a combo's first choice,
 * else 0 / 0.0 / "" / false by type (undefined for a socket). */
export function defaultOf(spec: InputSpec): unknown {
  const opts = options(spec);
  if ("default" in opts) return opts.default;
  const head = spec[0];
  const choices = Array.isArray(head) ? head : head === "COMBO" ? opts.options : null;
  if (Array.isArray(choices) && choices.length) return choices[0];
  return ({ INT: 0, FLOAT: 0, STRING: "", BOOLEAN: false } as Record<string, unknown>)[String(head)];
}

/** Type a node class from `/object_info`; null when the catalogue lacks it. */
export function nodeSpec(info: ObjectInfo, classType: string): NodeSpec | null {
  const def = info[classType];
  if (!def) return null;
  const outputs: OutputDef[] = (def.output ?? []).map((t, index) => ({
    index,
    type: Array.isArray(t) ? "COMBO" : String(t),
    name: def.output_name?.[index] ?? (Array.isArray(t) ? "COMBO" : String(t)),
    isList: def.output_is_list?.[index] ?? false,
  }));
  return {
    classType,
    displayName: def.display_name || classType,
    category: def.category ?? "",
    description: def.description ?? "",
    outputNode: !!def.output_node,
    inputs: inputSpecs(def).map(([name, spec, required]) => inputDef(name, spec, required)),
    outputs,
  };
}

/** The JSON Schema type of a widget kind (`integer`, `number`, `string`, `boolean`). */
export function jsonType(kind: WidgetKind | null | undefined): "integer" | "number" | "string" | "boolean" | undefined {
  switch (kind) {
    case "INT":
      return "integer";
    case "FLOAT":
      return "number";
    case "STRING":
    case "COMBO":
      return "string";
    case "BOOLEAN":
      return "boolean";
    default:
      return undefined;
  }
}

/** Node classes matching a search text (in name, display name or category), sorted by display name. */
export function searchNodes(info: ObjectInfo, text: string, limit = 200): NodeSpec[] {
  const words = text.toLowerCase().split(/\s+/).filter(Boolean);
  const out: NodeSpec[] = [];
  for (const classType of Object.keys(info)) {
    const def = info[classType];
    const hay = `${classType} ${def.display_name ?? ""} ${def.category ?? ""}`.toLowerCase();
    if (words.every((w) => hay.includes(w))) {
      const spec = nodeSpec(info, classType);
      if (spec) out.push(spec);
    }
  }
  out.sort((a, b) => a.displayName.localeCompare(b.displayName));
  return out.slice(0, limit);
}
