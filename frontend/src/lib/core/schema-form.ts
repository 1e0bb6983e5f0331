/**
 * JSON Schema (as pydantic's `model_json_schema()` writes it) -> form field descriptors, and
 * the client-side checks of the values typed into them. Pure logic, no DOM: the SchemaForm
 * component renders the descriptors; tests run this against the provider types' real schemas.
 *
 * Supported: `$ref` into `$defs` (local refs only), `anyOf`/`oneOf` with `{"type": "null"}`
 * (an optional field), `enum`/`const` (a select), booleans (a checkbox), integers and numbers
 * with `minimum`/`maximum`/`exclusiveMinimum`/`exclusiveMaximum` (a number input, plus a slider
 * when both bounds are known), strings (`format`, `pattern`, `minLength`, `maxLength`,
 * `writeOnly`), arrays of strings (a list editor), objects with `properties` (a nested
 * fieldset); anything else (free-form objects, `string | object` unions, arrays of objects) is
 * edited as JSON text.
 */

/** A JSON Schema node (the subset this module reads). */
export interface JsonSchema {
  type?: string | string[];
  title?: string;
  description?: string;
  default?: unknown;
  enum?: unknown[];
  const?: unknown;
  anyOf?: JsonSchema[];
  oneOf?: JsonSchema[];
  allOf?: JsonSchema[];
  $ref?: string;
  $defs?: Record<string, JsonSchema>;
  definitions?: Record<string, JsonSchema>;
  properties?: Record<string, JsonSchema>;
  required?: string[];
  additionalProperties?: boolean | JsonSchema;
  items?: JsonSchema;
  minimum?: number;
  maximum?: number;
  exclusiveMinimum?: number;
  exclusiveMaximum?: number;
  multipleOf?: number;
  minLength?: number;
  maxLength?: number;
  pattern?: string;
  format?: string;
  writeOnly?: boolean;
  minItems?: number;
  maxItems?: number;
}

/** How a field is edited. */
export type FieldKind = "select" | "checkbox" | "number" | "text" | "list" | "object" | "json";

/** One choice of a select: the JSON `value` and its label. */
export interface FieldOption {
  value: unknown;
  label: string;
}

/** One form field: what to render and how to check it. `path` is the dotted key from the
 * form's root (`backends.0.url` style; what a server 422 `field` names after its prefix). */
export interface FieldDescriptor {
  key: string;
  path: string;
  label: string;
  description: string | null;
  kind: FieldKind;
  required: boolean;
  /** `null` is allowed (an `anyOf` with `{"type": "null"}`): empty means "not set". */
  nullable: boolean;
  default: unknown;
  /** The default rendered as text (input placeholder), "" when there is none. */
  placeholder: string;
  options: FieldOption[];
  integer: boolean;
  min: number | null;
  max: number | null;
  exclusiveMin: number | null;
  exclusiveMax: number | null;
  /** Step of the number input: 1 for integers, `multipleOf` when given, else "any". */
  step: number | "any";
  /** Step of the slider: the input's step, or a hundredth of the range for free numbers. */
  sliderStep: number;
  /** Both bounds are known: a slider goes next to the number input. */
  slider: boolean;
  minLength: number | null;
  maxLength: number | null;
  pattern: string | null;
  format: string | null;
  /** `<input type>` for text fields: password (writeOnly / format password), url, email or text. */
  inputType: "text" | "password" | "url" | "email";
  /** JSON fields: a plain string is also a valid value (`string | object` unions). */
  acceptsString: boolean;
  /** Nested fields of an object with `properties`. */
  fields: FieldDescriptor[];
}

const MAX_DEPTH = 8;

/** Resolve a local `$ref` (`#/$defs/Name` or `#/definitions/Name`) against `root`.
 * Throws Error for a ref that is not local or names nothing. */
export function resolveRef(ref: string, root: JsonSchema): JsonSchema {
  const m = /^#\/(\$defs|definitions)\/(.+)$/.exec(ref);
  const target = m ? root[m[1] as "$defs" | "definitions"]?.[decodeURIComponent(m[2])] : undefined;
  if (!target) throw new Error(`unresolved $ref ${ref}`);
  return target;
}

/** `schema` with `$ref` and single-entry `allOf` replaced by what they point at (sibling keys
 * such as `description` or `default` win over the target's). */
export function deref(schema: JsonSchema, root: JsonSchema, depth = 0): JsonSchema {
  if (depth > MAX_DEPTH) return schema;
  if (schema.$ref) {
    const { $ref, ...rest } = schema;
    return deref({ ...resolveRef($ref, root), ...rest }, root, depth + 1);
  }
  if (schema.allOf && schema.allOf.length === 1) {
    const { allOf, ...rest } = schema;
    return deref({ ...deref(allOf[0], root, depth + 1), ...rest }, root, depth + 1);
  }
  return schema;
}

function isNullSchema(s: JsonSchema): boolean {
  return s.type === "null" || (Array.isArray(s.type) && s.type.length === 1 && s.type[0] === "null");
}

/** Split `anyOf: [X, {"type": "null"}]` into X and nullable; a `type: [X, "null"]` likewise. */
function unwrapNullable(schema: JsonSchema, root: JsonSchema): { schema: JsonSchema; nullable: boolean; variants: JsonSchema[] } {
  const s = deref(schema, root);
  const union = s.anyOf ?? s.oneOf;
  if (union) {
    const variants = union.map((v) => deref(v, root));
    const nonNull = variants.filter((v) => !isNullSchema(v));
    const nullable = nonNull.length < variants.length;
    const { anyOf: _a, oneOf: _o, ...outer } = s;
    if (nonNull.length === 1) return { schema: { ...nonNull[0], ...outer }, nullable, variants: nonNull };
    return { schema: { ...outer }, nullable, variants: nonNull };
  }
  if (Array.isArray(s.type)) {
    const types = s.type.filter((t) => t !== "null");
    const nullable = types.length < s.type.length;
    if (types.length === 1) return { schema: { ...s, type: types[0] }, nullable, variants: [] };
    return { schema: s, nullable, variants: types.map((t) => ({ type: t })) };
  }
  return { schema: s, nullable: false, variants: [] };
}

/** "history_poll_interval" -> "History poll interval" (when a schema has no title). */
export function humanize(key: string): string {
  const words = key.replace(/[_-]+/g, " ").replace(/([a-z])([A-Z])/g, "$1 $2").trim().toLowerCase();
  return words.charAt(0).toUpperCase() + words.slice(1);
}

function label(key: string, s: JsonSchema): string {
  // pydantic titles are the key title-cased ("Fail Rate"); a sentence-case label reads better.
  if (!s.title || s.title === humanize(key).replace(/\b\w/g, (c) => c.toUpperCase())) return humanize(key);
  return s.title;
}

function placeholderOf(value: unknown): string {
  if (value === undefined || value === null) return "";
  if (typeof value === "string") return value;
  if (Array.isArray(value) && value.every((v) => typeof v === "string")) return value.join(", ");
  return JSON.stringify(value);
}

function optionLabel(v: unknown): string {
  return typeof v === "string" ? v : JSON.stringify(v);
}

function numberStep(s: JsonSchema, integer: boolean): number | "any" {
  if (s.multipleOf) return s.multipleOf;
  if (integer) return 1;
  return "any";
}

/** Describe one property `key` of schema node `schema` (resolved against `root`). */
export function describeField(key: string, schema: JsonSchema, root: JsonSchema, required = false, prefix = "", depth = 0): FieldDescriptor {
  const { schema: s, nullable, variants } = unwrapNullable(schema, root);
  const path = prefix ? `${prefix}.${key}` : key;
  const def = schema.default !== undefined ? schema.default : s.default;
  const base: FieldDescriptor = {
    key,
    path,
    label: label(key, { ...s, title: schema.title ?? s.title }),
    description: schema.description ?? s.description ?? null,
    kind: "json",
    required,
    nullable,
    default: def,
    placeholder: placeholderOf(def),
    options: [],
    integer: false,
    min: null,
    max: null,
    exclusiveMin: null,
    exclusiveMax: null,
    step: "any",
    sliderStep: 1,
    slider: false,
    minLength: null,
    maxLength: null,
    pattern: null,
    format: null,
    inputType: "text",
    acceptsString: false,
    fields: [],
  };
  const type = Array.isArray(s.type) ? undefined : s.type;

  if (s.enum || s.const !== undefined) {
    const values = s.enum ?? [s.const];
    return { ...base, kind: "select", options: values.map((v) => ({ value: v, label: optionLabel(v) })) };
  }
  if (variants.length > 1) {
    // A union of several kinds: a plain string is accepted when one variant is a string.
    return { ...base, kind: "json", acceptsString: variants.some((v) => v.type === "string") };
  }
  if (type === "boolean") return { ...base, kind: "checkbox" };
  if (type === "integer" || type === "number") {
    const integer = type === "integer";
    const min = s.minimum ?? null;
    const max = s.maximum ?? null;
    const exMin = s.exclusiveMinimum ?? null;
    const exMax = s.exclusiveMaximum ?? null;
    const lo = min ?? exMin;
    const hi = max ?? exMax;
    const step = numberStep(s, integer);
    let sliderStep = step === "any" ? 1 : step;
    if (step === "any" && lo !== null && hi !== null) sliderStep = (hi - lo) / 100 >= 1 ? 1 : Number(((hi - lo) / 100).toPrecision(1));
    return {
      ...base, kind: "number", integer, min, max, exclusiveMin: exMin, exclusiveMax: exMax, step, sliderStep,
      slider: lo !== null && hi !== null,
    };
  }
  if (type === "string") {
    const password = s.writeOnly === true || s.format === "password";
    const inputType = password ? "password" : s.format === "uri" ? "url" : s.format === "email" ? "email" : "text";
    return {
      ...base, kind: "text", minLength: s.minLength ?? null, maxLength: s.maxLength ?? null,
      pattern: s.pattern ?? null, format: s.format ?? null, inputType,
    };
  }
  if (type === "array") {
    const items = s.items ? unwrapNullable(s.items, root).schema : {};
    if (items.type === "string" && !items.enum) {
      return { ...base, kind: "list", minLength: items.minLength ?? null, maxLength: items.maxLength ?? null, pattern: items.pattern ?? null };
    }
    return base;
  }
  if ((type === "object" || s.properties) && s.properties && Object.keys(s.properties).length && depth < MAX_DEPTH) {
    return { ...base, kind: "object", fields: describeProperties(s, root, path, depth + 1) };
  }
  return base;
}

function describeProperties(schema: JsonSchema, root: JsonSchema, prefix: string, depth: number): FieldDescriptor[] {
  const s = deref(schema, root);
  const req = new Set(s.required ?? []);
  return Object.entries(s.properties ?? {}).map(([k, v]) => describeField(k, v, root, req.has(k), prefix, depth));
}

/** The fields of an object schema (the form's root), in the schema's property order.
 * `prefix` is prepended to every `path` (e.g. "" for a provider's settings). */
export function describeSchema(schema: JsonSchema, prefix = ""): FieldDescriptor[] {
  return describeProperties(schema, schema, prefix, 0);
}

/** The value is "not set" (the server's default applies). */
export function isUnset(value: unknown): boolean {
  return value === undefined || value === null || value === "";
}

function fmt(n: number): string {
  return String(n);
}

/**
 * Check `value` against `field`; returns a message for the user, or null when it is fine.
 * `value` is the parsed value: a number (NaN for text that is no number), string, boolean,
 * string[] (lists), object, or undefined/null/"" for "not set".
 */
export function validateField(field: FieldDescriptor, value: unknown): string | null {
  if (isUnset(value)) {
    if (field.required && field.default === undefined && !field.nullable) return "Required.";
    return null;
  }
  switch (field.kind) {
    case "number": {
      if (typeof value !== "number" || Number.isNaN(value)) return "Enter a number.";
      if (field.integer && !Number.isInteger(value)) return "Enter a whole number.";
      if (field.min !== null && value < field.min) return `Must be at least ${fmt(field.min)}.`;
      if (field.max !== null && value > field.max) return `Must be at most ${fmt(field.max)}.`;
      if (field.exclusiveMin !== null && value <= field.exclusiveMin) return `Must be more than ${fmt(field.exclusiveMin)}.`;
      if (field.exclusiveMax !== null && value >= field.exclusiveMax) return `Must be less than ${fmt(field.exclusiveMax)}.`;
      return null;
    }
    case "text":
      if (typeof value !== "string") return "Enter text.";
      return checkString(field, value);
    case "select":
      return field.options.some((o) => o.value === value) ? null : "Choose one of the options.";
    case "checkbox":
      return typeof value === "boolean" ? null : "Must be on or off.";
    case "list": {
      if (!Array.isArray(value)) return "Must be a list.";
      for (const [i, item] of value.entries()) {
        if (typeof item !== "string" || item === "") return `Item ${i + 1} is empty.`;
        const msg = checkString(field, item);
        if (msg) return `Item ${i + 1}: ${msg}`;
      }
      return null;
    }
    case "json":
      if (typeof value === "string" && field.acceptsString) return null;
      if (value instanceof JsonTextError) return value.message;
      return null;
    case "object":
      return typeof value === "object" && !Array.isArray(value) ? null : "Must be an object.";
  }
}

function checkString(field: FieldDescriptor, value: string): string | null {
  if (field.minLength !== null && value.length < field.minLength) {
    return field.minLength === 1 ? "Must not be empty." : `At least ${field.minLength} characters.`;
  }
  if (field.maxLength !== null && value.length > field.maxLength) return `At most ${field.maxLength} characters.`;
  if (field.pattern !== null) {
    let re: RegExp | null = null;
    try {
      re = new RegExp(field.pattern, "u");
    } catch {
      re = null; // a pattern JavaScript cannot read: the server checks it
    }
    if (re && !re.test(value)) return `Does not match the expected format (${field.pattern}).`;
  }
  if (field.format === "uri" && !/^[a-z][a-z0-9+.-]*:\/\//i.test(value)) return "Enter a URL (http://...).";
  return null;
}

/** A JSON text that does not parse (kept as the value so validation can report it). */
export class JsonTextError {
  constructor(public text: string, public message: string) {}
}

/** Parse the text of a JSON field: "" -> undefined; a string field accepts non-JSON text as is;
 * otherwise JSON.parse, or a {@link JsonTextError}. */
export function parseJsonText(field: FieldDescriptor, text: string): unknown {
  const t = text.trim();
  if (t === "") return undefined;
  try {
    const parsed: unknown = JSON.parse(t);
    if (field.acceptsString || typeof parsed === "object") return parsed;
    return parsed;
  } catch (e) {
    if (field.acceptsString) return text;
    return new JsonTextError(text, `Not valid JSON: ${(e as Error).message}`);
  }
}

/** The text a JSON field shows for `value`. */
export function jsonText(field: FieldDescriptor, value: unknown): string {
  if (value === undefined || value === null) return "";
  if (value instanceof JsonTextError) return value.text;
  if (typeof value === "string" && field.acceptsString) return value;
  return JSON.stringify(value, null, 2);
}

/** Parse a number input's text: "" -> undefined, else a number (NaN when it is none). */
export function parseNumberText(text: string): number | undefined {
  const t = text.trim();
  if (t === "") return undefined;
  return Number(t);
}

/** Every error of `values` against `fields`, keyed by field path (nested objects included). */
export function validateValues(fields: FieldDescriptor[], values: Record<string, unknown> | undefined): Record<string, string> {
  const out: Record<string, string> = {};
  for (const f of fields) {
    const v = values?.[f.key];
    if (f.kind === "object" && v && typeof v === "object" && !Array.isArray(v)) {
      Object.assign(out, validateValues(f.fields, v as Record<string, unknown>));
      continue;
    }
    const msg = validateField(f, v);
    if (msg) out[f.path] = msg;
  }
  return out;
}

/**
 * The values to send: unset entries dropped (the server's default applies), empty nested
 * objects dropped, keys the schema does not know kept as they are. Throws nothing; run
 * {@link validateValues} first.
 */
export function cleanValues(fields: FieldDescriptor[], values: Record<string, unknown>): Record<string, unknown> {
  const known = new Map(fields.map((f) => [f.key, f]));
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(values)) {
    const f = known.get(k);
    if (!f) {
      if (v !== undefined) out[k] = v;
      continue;
    }
    if (v === undefined || v === "" || v instanceof JsonTextError) continue;
    if (v === null && !f.nullable) continue;
    if (f.kind === "object" && v && typeof v === "object" && !Array.isArray(v)) {
      const inner = cleanValues(f.fields, v as Record<string, unknown>);
      if (Object.keys(inner).length) out[k] = inner;
      continue;
    }
    out[k] = v;
  }
  return out;
}
