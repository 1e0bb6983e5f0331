/**
 * The Generate page's logic as plain TypeScript (no Svelte, no DOM): which parameter controls a
 * provider's capabilities and options call for, the control a workflow parameter's JSON Schema
 * becomes, size presets by aspect ratio, and building and checking the `POST /generations`
 * body from the form. Sizes are pixels throughout.
 */
import type { GenerationRequest } from "../api/client";

/** The server's hard limits (backend/image_studio/types.py MAX_SIDE, MAX_N). */
export const MAX_SIDE = 16384;
export const MAX_N = 64;
/** The largest seed the server accepts (2**64 - 1); a JS number holds it only approximately, so
 * the UI keeps seeds below 2**53. */
export const MAX_SEED = Number.MAX_SAFE_INTEGER;

/** What a provider can do (backend Capabilities); sizes in pixels, `max_n` images per job. */
export interface Capabilities {
  media: string[];
  txt2img: boolean;
  img2img: boolean;
  inpaint: boolean;
  upscale: boolean;
  video: boolean;
  max_width: number;
  max_height: number;
  max_n: number;
  negative_prompt: boolean;
  seed: boolean;
  loras: boolean;
  vae: boolean;
  hires: boolean;
  /** The sizes the provider's default model accepts (null: any up to max_width x max_height). */
  sizes?: SizeRule | null;
  /** Size rules of other models, by model id or id prefix. */
  modelSizes?: Record<string, SizeRule>;
  /** The longest prompt the provider takes (characters), or null. */
  maxPromptChars?: number | null;
  /** Set on {@link AUTOMATIC_CAPS} only: the limits are not one provider's, so the form leaves
   * sizes and counts to the server to judge. */
  automatic?: boolean;
}

/** Capabilities when no provider is chosen (the fallback chain): everything the server's own
 * limits allow; the server and the provider that runs the job judge the rest. */
export const AUTOMATIC_CAPS: Capabilities = {
  media: ["image"], txt2img: true, img2img: true, inpaint: true, upscale: false, video: false,
  max_width: MAX_SIDE, max_height: MAX_SIDE, max_n: MAX_N, negative_prompt: true, seed: true,
  loras: false, vae: false, hires: false, automatic: true,
};

/** Read a provider's `capabilities` object (loosely typed in the API) into {@link Capabilities};
 * missing keys take the backend's defaults. Null (a provider that did not load) gives null. */
export function readCapabilities(raw: Record<string, unknown> | null | undefined): Capabilities | null {
  if (!raw) return null;
  const b = (k: string, d: boolean) => (typeof raw[k] === "boolean" ? (raw[k] as boolean) : d);
  const n = (k: string, d: number) => (typeof raw[k] === "number" ? (raw[k] as number) : d);
  return {
    media: Array.isArray(raw.media) ? raw.media.map(String) : ["image"],
    txt2img: b("txt2img", true), img2img: b("img2img", false), inpaint: b("inpaint", false),
    upscale: b("upscale", false), video: b("video", false),
    max_width: n("max_width", 2048), max_height: n("max_height", 2048), max_n: n("max_n", 4),
    negative_prompt: b("negative_prompt", true), seed: b("seed", true),
    loras: b("loras", false), vae: b("vae", false), hires: b("hires", false),
    sizes: readSizeRule(raw.sizes),
    modelSizes: Object.fromEntries(
      Object.entries((raw.model_sizes as Record<string, unknown> | null) ?? {})
        .map(([k, v]) => [k, readSizeRule(v)] as const)
        .filter((e): e is readonly [string, SizeRule] => e[1] !== null),
    ),
    maxPromptChars: typeof raw.max_prompt_chars === "number" ? raw.max_prompt_chars : null,
  };
}

/** The sizes a provider accepts (backend SizeRule): `fixed` (exactly `sizes`, "WxH"),
 * `aspect_ratios` (one size per ratio and tier in `ratios`) or `multiple_of` (sides multiples of
 * `multiple` from `min` to `max`, at most `max_pixels` pixels and `max_ratio` long side over
 * short; `buckets` the preferred sizes). Pixels throughout. */
export interface SizeRule {
  kind: "fixed" | "aspect_ratios" | "multiple_of";
  sizes: string[];
  auto: boolean;
  ratios: { ratio: string; width: number; height: number; tier: string | null }[];
  multiple: number;
  min: number | null;
  max: number | null;
  max_pixels: number | null;
  max_ratio: number | null;
  buckets: string[];
  note: string | null;
}

/** Read a size rule from the API's loose JSON; null when absent or of an unknown kind. */
export function readSizeRule(raw: unknown): SizeRule | null {
  if (!raw || typeof raw !== "object") return null;
  const r = raw as Record<string, unknown>;
  if (r.kind !== "fixed" && r.kind !== "aspect_ratios" && r.kind !== "multiple_of") return null;
  const n = (v: unknown) => (typeof v === "number" ? v : null);
  const strs = (v: unknown) => (Array.isArray(v) ? v.filter((x): x is string => typeof x === "string") : []);
  return {
    kind: r.kind,
    sizes: strs(r.sizes),
    auto: r.auto === true,
    ratios: (Array.isArray(r.ratios) ? r.ratios : [])
      .filter((x): x is Record<string, unknown> => !!x && typeof x === "object")
      .map((x) => ({ ratio: String(x.ratio), width: Number(x.width), height: Number(x.height), tier: typeof x.tier === "string" ? x.tier : null }))
      .filter((x) => x.width > 0 && x.height > 0),
    multiple: n(r.multiple) ?? 1,
    min: n(r.min), max: n(r.max), max_pixels: n(r.max_pixels), max_ratio: n(r.max_ratio),
    buckets: strs(r.buckets),
    note: typeof r.note === "string" ? r.note : null,
  };
}

/** The size rule for `model` on a provider: its own rule in `modelSizes` (by id, else the longest
 * id prefix), else the provider's `sizes`; null when the provider takes any size. */
export function sizeRuleFor(caps: Capabilities, model: string | null): SizeRule | null {
  const byModel = caps.modelSizes ?? {};
  if (model) {
    if (byModel[model]) return byModel[model];
    const prefix = Object.keys(byModel).filter((k) => model.startsWith(k)).sort((a, b) => b.length - a.length)[0];
    if (prefix) return byModel[prefix];
  }
  return caps.sizes ?? null;
}

/** "1024x768" -> {width, height}; null when not a size. */
export function parseSize(text: string): { width: number; height: number } | null {
  const m = /^\s*(\d{1,6})\s*[xX×]\s*(\d{1,6})\s*$/.exec(text);
  return m ? { width: Number(m[1]), height: Number(m[2]) } : null;
}

/** A size preset: a label and its pixels. */
export interface SizePreset {
  label: string;
  width: number;
  height: number;
}

/** The presets a size rule offers: a `fixed` rule's sizes, an `aspect_ratios` rule's entries
 * ("16:9 · 1K"), a `multiple_of` rule's buckets; each labelled with its ratio when it has a
 * common one. */
export function rulePresets(rule: SizeRule | null): SizePreset[] {
  if (!rule) return [];
  const named = (w: number, h: number) => {
    const a = aspectOf(w, h);
    return `${w}×${h}${a ? ` (${a})` : ""}`;
  };
  if (rule.kind === "aspect_ratios") {
    return rule.ratios.map((r) => ({ label: `${r.ratio}${r.tier ? ` · ${r.tier}` : ""} — ${r.width}×${r.height}`, width: r.width, height: r.height }));
  }
  const list = rule.kind === "fixed" ? rule.sizes : rule.buckets;
  return list.map(parseSize).filter((s): s is { width: number; height: number } => !!s).map((s) => ({ ...s, label: named(s.width, s.height) }));
}

/** Why `rule` refuses width x height (pixels), or null when it takes it (or there is no rule). */
export function checkSize(rule: SizeRule | null, width: number, height: number): string | null {
  if (!rule) return null;
  const size = `${width}x${height}`;
  if (rule.kind === "fixed" || rule.kind === "aspect_ratios") {
    const ok = rule.kind === "fixed"
      ? rule.sizes.some((s) => { const p = parseSize(s); return p && p.width === width && p.height === height; })
      : rule.ratios.some((r) => r.width === width && r.height === height);
    if (ok) return null;
    const list = rulePresets(rule).map((p) => `${p.width}×${p.height}`);
    return `${size} is not a size this model takes (${list.slice(0, 6).join(", ")}${list.length > 6 ? " …" : ""})`;
  }
  const m = rule.multiple;
  if (m > 1 && (width % m || height % m)) return `width and height must be multiples of ${m}`;
  if (rule.min !== null && Math.min(width, height) < rule.min) return `each side must be at least ${rule.min}`;
  if (rule.max !== null && Math.max(width, height) > rule.max) return `each side must be at most ${rule.max}`;
  if (rule.max_pixels !== null && width * height > rule.max_pixels) {
    return `${size} is over ${rule.max_pixels.toLocaleString("en")} pixels`;
  }
  if (rule.max_ratio !== null && Math.max(width, height) / Math.min(width, height) > rule.max_ratio + 1e-9) {
    return `the long side may be at most ${rule.max_ratio} times the short one`;
  }
  return null;
}

/** A provider's `GET /providers/{id}/options` answer: lists of names per kind (samplers,
 * schedulers, loras, vaes, upscalers, latent_upscale_methods, workflows, checkpoints ...). */
export type ProviderOptions = Record<string, unknown>;

/** The string list under `key` of the options (empty when absent or not a list). */
export function optionList(options: ProviderOptions | null | undefined, key: string): string[] {
  const v = options?.[key];
  return Array.isArray(v) ? v.filter((x) => typeof x === "string" || typeof x === "number").map(String) : [];
}

/** Which standard controls show: from the capabilities, the options and (for a ComfyUI workflow)
 * the slots the workflow has (`workflowSlots`, null = no workflow chosen: all apply) and the
 * chosen `model` (whose size rule applies). */
export interface ControlSet {
  negativePrompt: boolean;
  seed: boolean;
  steps: boolean;
  cfgScale: boolean;
  sampler: boolean;
  scheduler: boolean;
  loras: boolean;
  vae: boolean;
  hires: boolean;
  initImage: boolean;
  mask: boolean;
  upscale: boolean;
  media: string[];
  maxN: number;
  maxWidth: number;
  maxHeight: number;
  /** Whether sizes and counts are checked against maxWidth/maxHeight/maxN here (false in
   * automatic mode: the server and the provider that runs the job judge). */
  checkLimits: boolean;
  /** The size rule of the chosen provider and model (null: any size up to the maximum). */
  sizeRule: SizeRule | null;
  samplers: string[];
  schedulers: string[];
  loraNames: string[];
  vaes: string[];
  upscalers: string[];
}

/** Standard request fields a ComfyUI workflow slot stands for (slot -> request field); these
 * slots are set by the standard controls, the others become workflow parameter controls. */
export const STANDARD_SLOTS: Record<string, string> = {
  prompt: "prompt", negative_prompt: "negative_prompt", seed: "seed", steps: "steps", cfg: "cfg_scale",
  sampler: "sampler", scheduler: "scheduler", width: "width", height: "height", batch_size: "n",
  checkpoint: "model", denoise: "denoising_strength", init_image: "init_image", mask: "mask",
};

/** The controls for `caps` and `options`; `workflowSlots` narrows the sampler controls to the
 * slots a chosen workflow has (its parameter schema's property names). */
export function controlsFor(
  caps: Capabilities,
  options: ProviderOptions | null = null,
  workflowSlots: string[] | null = null,
  model: string | null = null,
): ControlSet {
  const has = (slot: string) => workflowSlots === null || workflowSlots.includes(slot);
  const samplers = optionList(options, "samplers");
  const schedulers = optionList(options, "schedulers");
  const upscalers = [...optionList(options, "upscalers"), ...optionList(options, "latent_upscale_methods")];
  return {
    negativePrompt: caps.negative_prompt && has("negative_prompt"),
    seed: caps.seed && has("seed"),
    steps: has("steps"),
    cfgScale: has("cfg"),
    sampler: samplers.length > 0 && has("sampler"),
    scheduler: schedulers.length > 0 && has("scheduler"),
    loras: caps.loras,
    vae: caps.vae,
    hires: caps.hires,
    initImage: (caps.img2img || caps.inpaint || caps.upscale) && has("init_image"),
    mask: caps.inpaint && has("mask"),
    upscale: caps.upscale,
    media: caps.media.length ? caps.media : ["image"],
    maxN: Math.max(1, Math.min(caps.max_n, MAX_N)),
    maxWidth: Math.min(caps.max_width, MAX_SIDE),
    maxHeight: Math.min(caps.max_height, MAX_SIDE),
    checkLimits: !caps.automatic,
    sizeRule: caps.automatic ? null : sizeRuleFor(caps, model),
    samplers,
    schedulers,
    loraNames: optionList(options, "loras"),
    vaes: optionList(options, "vaes"),
    upscalers: Array.from(new Set(upscalers)),
  };
}

/** One control built from a JSON Schema property. `kind`: slider (a range and a number input,
 * when both bounds are known), number, select (enum), toggle (boolean) or text. */
export interface ControlDescriptor {
  name: string;
  label: string;
  kind: "slider" | "number" | "select" | "toggle" | "text";
  valueType: "integer" | "number" | "boolean" | "string";
  default: unknown;
  min?: number;
  max?: number;
  step?: number;
  options?: { value: string | number | boolean; label: string }[];
  description?: string;
}

/** A JSON Schema property as `GET /workflows/{id}/parameters` gives it. */
export interface SchemaProperty {
  type?: string | string[];
  default?: unknown;
  title?: string;
  description?: string;
  minimum?: number;
  maximum?: number;
  exclusiveMinimum?: number;
  exclusiveMaximum?: number;
  multipleOf?: number;
  step?: number;
  enum?: unknown[];
}

/** "cfg_scale" -> "Cfg scale". */
export function humanize(name: string): string {
  const s = name.replace(/[_-]+/g, " ").trim();
  return s ? s[0].toUpperCase() + s.slice(1) : name;
}

function typeOf(prop: SchemaProperty): ControlDescriptor["valueType"] {
  const t = Array.isArray(prop.type) ? prop.type.find((x) => x !== "null") : prop.type;
  if (t === "integer" || t === "number" || t === "boolean" || t === "string") return t;
  const d = prop.default;
  if (typeof d === "boolean") return "boolean";
  if (typeof d === "number") return Number.isInteger(d) ? "integer" : "number";
  return "string";
}

/** The control descriptor for the schema property `name`. */
export function schemaControl(name: string, prop: SchemaProperty): ControlDescriptor {
  const valueType = typeOf(prop);
  const base = {
    name,
    label: prop.title || humanize(name),
    valueType,
    default: prop.default,
    ...(prop.description ? { description: prop.description } : {}),
  };
  if (Array.isArray(prop.enum) && prop.enum.length) {
    const options = prop.enum
      .filter((v): v is string | number | boolean => ["string", "number", "boolean"].includes(typeof v))
      .map((v) => ({ value: v, label: String(v) }));
    return { ...base, kind: "select", options };
  }
  if (valueType === "boolean") return { ...base, kind: "toggle" };
  if (valueType === "integer" || valueType === "number") {
    const min = prop.minimum ?? prop.exclusiveMinimum;
    const max = prop.maximum ?? prop.exclusiveMaximum;
    const step = prop.multipleOf ?? prop.step ?? (valueType === "integer" ? 1 : undefined);
    const bounds = { ...(min !== undefined ? { min } : {}), ...(max !== undefined ? { max } : {}) };
    if (min !== undefined && max !== undefined) {
      return { ...base, kind: "slider", ...bounds, step: step ?? niceStep(min, max) };
    }
    return { ...base, kind: "number", ...bounds, ...(step !== undefined ? { step } : {}) };
  }
  return { ...base, kind: "text" };
}

/** A step giving about a hundred slider positions between `min` and `max` (1, 0.5, 0.1, 0.05 ...). */
export function niceStep(min: number, max: number): number {
  const span = Math.abs(max - min) || 1;
  const raw = span / 100;
  const pow = 10 ** Math.floor(Math.log10(raw));
  for (const m of [1, 2, 5, 10]) if (raw <= m * pow) return m * pow;
  return 10 * pow;
}

/** A standard control narrowed by a workflow's metadata for the slot it sets (`steps`, `cfg`,
 * `denoise` ...): the schema's title, bounds, step and default win over the standard ones. */
export function withSchema(control: ControlDescriptor, prop: SchemaProperty | null | undefined): ControlDescriptor {
  if (!prop) return control;
  const out: ControlDescriptor = { ...control };
  if (prop.title) out.label = prop.title;
  if (prop.description) out.description = prop.description;
  if (typeof prop.minimum === "number") out.min = prop.minimum;
  if (typeof prop.maximum === "number") out.max = prop.maximum;
  const step = prop.multipleOf ?? prop.step;
  if (typeof step === "number") out.step = step;
  if (prop.default !== undefined && prop.default !== null) out.default = prop.default;
  return out;
}

/** A workflow parameter schema (`{"type": "object", "properties": {...}}`). */
export interface ParameterSchema {
  properties?: Record<string, SchemaProperty>;
  title?: string;
  description?: string;
}

/** The controls of a workflow's own parameters: every property but the standard slots (which
 * the standard controls set through the request's fields). */
export function workflowControls(schema: ParameterSchema | null | undefined): ControlDescriptor[] {
  const props = schema?.properties ?? {};
  return Object.entries(props)
    .filter(([name]) => !(name in STANDARD_SLOTS))
    .map(([name, prop]) => schemaControl(name, prop ?? {}));
}

/** Coerce a control's raw value to its type (numbers from text, booleans); null when empty or
 * not a number. */
export function coerce(control: ControlDescriptor, raw: unknown): unknown {
  if (raw === "" || raw === null || raw === undefined) return null;
  if (control.valueType === "boolean") return raw === true || raw === "true";
  if (control.valueType === "integer" || control.valueType === "number") {
    const n = typeof raw === "number" ? raw : Number(raw);
    if (!Number.isFinite(n)) return null;
    return control.valueType === "integer" ? Math.round(n) : n;
  }
  return String(raw);
}

/** Why `value` does not fit `control` (type, bounds, step, enum), or null when it does. */
export function checkControl(control: ControlDescriptor, value: unknown): string | null {
  if (value === null || value === undefined) return null;
  if (control.valueType === "integer" && !Number.isInteger(value)) return "must be a whole number";
  if ((control.valueType === "integer" || control.valueType === "number") && typeof value === "number") {
    if (control.min !== undefined && value < control.min) return `must be at least ${control.min}`;
    if (control.max !== undefined && value > control.max) return `must be at most ${control.max}`;
  }
  if (control.kind === "select" && control.options && !control.options.some((o) => o.value === value)) {
    return `must be one of ${control.options.map((o) => o.label).join(", ")}`;
  }
  return null;
}

// ------------------------------------------------------------------------------ sizes

/** An aspect ratio preset: label and width:height. */
export interface AspectPreset {
  label: string;
  w: number;
  h: number;
}

export const ASPECT_PRESETS: AspectPreset[] = [
  { label: "1:1", w: 1, h: 1 },
  { label: "4:3", w: 4, h: 3 },
  { label: "3:4", w: 3, h: 4 },
  { label: "3:2", w: 3, h: 2 },
  { label: "2:3", w: 2, h: 3 },
  { label: "16:9", w: 16, h: 9 },
  { label: "9:16", w: 9, h: 16 },
  { label: "21:9", w: 21, h: 9 },
];

/** Base sizes (the side of the square of the same area), pixels. */
export const BASE_SIZES = [512, 768, 1024, 1536, 2048];

/**
 * The width and height of an aspect ratio whose area is `base`² pixels, each a multiple of
 * `multiple` (8 or 64), scaled down to fit `maxWidth` x `maxHeight` (keeping the ratio as far as
 * the rounding allows) and at least `multiple`.
 */
export function presetSize(
  aspect: { w: number; h: number },
  base: number,
  maxWidth: number,
  maxHeight: number,
  multiple = 64,
): { width: number; height: number } {
  const ratio = aspect.w / aspect.h;
  let width = base * Math.sqrt(ratio);
  let height = base / Math.sqrt(ratio);
  const fit = Math.min(1, maxWidth / width, maxHeight / height);
  width *= fit;
  height *= fit;
  const snap = (v: number, max: number) => {
    const down = Math.floor(max / multiple) * multiple;
    return Math.max(multiple, Math.min(Math.round(v / multiple) * multiple, down || multiple));
  };
  return { width: snap(width, maxWidth), height: snap(height, maxHeight) };
}

/** The preset label whose ratio is within 2 % of width:height, or null. */
export function aspectOf(width: number, height: number): string | null {
  if (!(width > 0 && height > 0)) return null;
  const r = width / height;
  const hit = ASPECT_PRESETS.find((p) => Math.abs(p.w / p.h - r) / r < 0.02);
  return hit ? hit.label : null;
}

// ------------------------------------------------------------------------------ request

/** A LoRA row of the form. */
export interface LoraRow {
  name: string;
  weight: number;
}

/** The Generate form's state (numbers may be null when a field is left empty). */
export interface GenerateForm {
  prompt: string;
  negativePrompt: string;
  provider: string | null;
  model: string | null;
  workflow: string | null;
  media: string;
  width: number | null;
  height: number | null;
  /** exact: a size the provider does not take is refused; nearest: the server snaps it. */
  sizePolicy: "exact" | "nearest";
  n: number | null;
  batchCount: number | null;
  promptPerLine: boolean;
  steps: number | null;
  cfgScale: number | null;
  sampler: string | null;
  scheduler: string | null;
  /** null or -1: random. */
  seed: number | null;
  initImage: string | null;
  mask: string | null;
  strength: number | null;
  loras: LoraRow[];
  vae: string | null;
  hires: { enabled: boolean; scale: number; steps: number | null; denoise: number; upscaler: string | null };
  upscale: { enabled: boolean; scale: number; upscaler: string | null };
  params: Record<string, unknown>;
}

/** A fresh form (1024 x 1024, one image, random seed). */
export function defaultForm(): GenerateForm {
  return {
    prompt: "", negativePrompt: "", provider: null, model: null, workflow: null, media: "image",
    width: 1024, height: 1024, sizePolicy: "exact", n: 1, batchCount: 1, promptPerLine: false,
    steps: null, cfgScale: null, sampler: null, scheduler: null, seed: -1,
    initImage: null, mask: null, strength: 0.75, loras: [], vae: null,
    hires: { enabled: false, scale: 2, steps: null, denoise: 0.5, upscaler: null },
    upscale: { enabled: false, scale: 2, upscaler: null },
    params: {},
  };
}

/** Field -> message, keyed by the request's field names (`width`, `loras.0.name`, `params.color` ...). */
export type FieldErrors = Record<string, string>;

/** What {@link buildRequest} returns: the body(ies) to send, or the errors per field. `batch`
 * is set when more than one job is asked for (`POST /generations/batch`). */
export interface BuiltRequest {
  request: GenerationRequest;
  batch: { base: GenerationRequest; prompts: string[]; grid: Record<string, unknown[]> } | null;
  errors: FieldErrors;
}

function intIn(errors: FieldErrors, field: string, label: string, v: number | null, min: number, max: number): void {
  if (v === null || v === undefined || Number.isNaN(v)) return;
  if (!Number.isInteger(v)) errors[field] = `${label} must be a whole number`;
  else if (v < min) errors[field] = `${label} must be at least ${min}`;
  else if (v > max) errors[field] = `${label} must be at most ${max}`;
}

function numIn(errors: FieldErrors, field: string, label: string, v: number | null, min: number, max: number): void {
  if (v === null || v === undefined) return;
  if (Number.isNaN(v)) errors[field] = `${label} must be a number`;
  else if (v < min) errors[field] = `${label} must be at least ${min}`;
  else if (v > max) errors[field] = `${label} must be at most ${max}`;
}

/**
 * Build the `POST /generations` body from the form and check it against `caps` (the chosen
 * provider's capabilities, or {@link AUTOMATIC_CAPS}) and `controls` (which fields apply), and
 * the workflow parameter controls `paramControls`. Fields the controls hide are left out.
 * Errors are keyed by request field (`width`, `prompt`, `params.<name>` ...); `providerName`
 * names the provider in size messages. `randomSeed` draws seeds for a batch over seeds.
 * `standard` (request field -> control, see {@link withSchema}) checks standard fields against
 * a workflow's bounds.
 */
export function buildRequest(
  form: GenerateForm,
  caps: Capabilities,
  controls: ControlSet,
  paramControls: ControlDescriptor[] = [],
  providerName = "the provider",
  randomSeed: () => number = () => Math.floor(Math.random() * 2 ** 32),
  standard: Record<string, ControlDescriptor> = {},
): BuiltRequest {
  const errors: FieldErrors = {};
  const width = form.width ?? NaN;
  const height = form.height ?? NaN;
  const n = form.n ?? 1;
  const upscaling = controls.upscale && form.upscale.enabled && !!form.initImage;
  if (!form.prompt.trim() && !upscaling) errors.prompt = "Write a prompt";
  if (caps.maxPromptChars && form.prompt.length > caps.maxPromptChars) {
    errors.prompt = `${providerName} takes prompts of at most ${caps.maxPromptChars.toLocaleString("en")} characters (${form.prompt.length.toLocaleString("en")} given)`;
  }
  for (const [field, label, v, max] of [
    ["width", "Width", width, controls.maxWidth],
    ["height", "Height", height, controls.maxHeight],
  ] as const) {
    if (!Number.isFinite(v)) errors[field] = `${label} is required`;
    else if (!Number.isInteger(v)) errors[field] = `${label} must be a whole number`;
    else if (v < 8) errors[field] = `${label} must be at least 8`;
    else if (controls.checkLimits && v > max) errors[field] = `${label} ${v} is over ${providerName}'s maximum ${max}`;
  }
  const ruleApplies = controls.sizeRule && !upscaling && !(form.initImage && controls.sizeRule.kind === "aspect_ratios");
  if (form.sizePolicy === "exact" && ruleApplies && !errors.width && !errors.height) {
    const why = checkSize(controls.sizeRule, width, height);
    if (why) errors.width = `${why}; pick a preset or let the studio snap to the nearest size`;
  }
  intIn(errors, "n", "Images per job", n, 1, controls.checkLimits ? controls.maxN : Infinity);
  if (controls.checkLimits && n > controls.maxN) errors.n = `${providerName} makes at most ${controls.maxN} images per job`;
  intIn(errors, "batch", "Batch count", form.batchCount, 1, 100);
  if (controls.steps) intIn(errors, "steps", "Steps", form.steps, 1, 1000);
  if (controls.cfgScale) numIn(errors, "cfg_scale", "CFG scale", form.cfgScale, 0, 100);
  if (controls.seed && form.seed !== null && form.seed !== -1) intIn(errors, "seed", "Seed", form.seed, 0, MAX_SEED);
  if (form.mask && !form.initImage) errors.mask = "A mask needs an init image";
  if (form.initImage && !upscaling) numIn(errors, "denoising_strength", "Strength", form.strength, 0, 1);
  if (form.initImage && !form.mask && !caps.img2img && !upscaling) {
    errors.init_image = `${providerName} does not do image-to-image`;
  }
  if (form.initImage && form.mask && !caps.inpaint) errors.mask = `${providerName} does not do inpainting`;

  const request: GenerationRequest = {
    prompt: form.prompt,
    width: Number.isFinite(width) ? width : 0,
    height: Number.isFinite(height) ? height : 0,
    n,
    size_policy: form.sizePolicy,
    media: (controls.media.includes(form.media) ? form.media : controls.media[0]) as GenerationRequest["media"],
  };
  if (form.provider) request.provider = form.provider;
  if (form.model) request.model = form.model;
  if (form.workflow) request.workflow = form.workflow;
  if (controls.negativePrompt && form.negativePrompt.trim()) request.negative_prompt = form.negativePrompt;
  if (controls.steps && form.steps !== null) request.steps = form.steps;
  if (controls.cfgScale && form.cfgScale !== null) request.cfg_scale = form.cfgScale;
  if (controls.sampler && form.sampler) request.sampler = form.sampler;
  if (controls.scheduler && form.scheduler) request.scheduler = form.scheduler;
  if (controls.seed && form.seed !== null) request.seed = form.seed;
  if (form.initImage) {
    request.init_image = form.initImage;
    if (form.mask) request.mask = form.mask;
    if (upscaling) {
      request.upscale = { scale: form.upscale.scale, upscaler: form.upscale.upscaler || null };
      numIn(errors, "upscale.scale", "Upscale factor", form.upscale.scale, 1, 8);
    } else if (form.strength !== null) request.denoising_strength = form.strength;
  }
  if (controls.loras) {
    const loras = form.loras.filter((l) => l.name.trim() || l.weight !== 1);
    loras.forEach((l, i) => {
      if (!l.name.trim()) errors[`loras.${i}.name`] = "Choose a LoRA";
      numIn(errors, `loras.${i}.weight`, "Weight", l.weight, -10, 10);
    });
    if (loras.length > 16) errors.loras = "At most 16 LoRAs";
    if (loras.length) request.loras = loras.map((l) => ({ name: l.name.trim(), weight: l.weight }));
  }
  if (controls.vae && form.vae) request.vae = form.vae;
  if (controls.hires && form.hires.enabled) {
    const h = form.hires;
    numIn(errors, "hires.scale", "Hires scale", h.scale, 1, 4);
    intIn(errors, "hires.steps", "Hires steps", h.steps, 1, 150);
    numIn(errors, "hires.denoising_strength", "Hires denoise", h.denoise, 0, 1);
    request.hires = { scale: h.scale, steps: h.steps, denoising_strength: h.denoise, upscaler: h.upscaler || null };
    if (Number.isFinite(width) && Number.isFinite(height)) {
      const w = Math.round(width * h.scale);
      const hh = Math.round(height * h.scale);
      if (controls.checkLimits && (w > controls.maxWidth || hh > controls.maxHeight)) {
        errors["hires.scale"] = `The hires pass makes ${w}x${hh}, over ${providerName}'s maximum ${controls.maxWidth}x${controls.maxHeight}`;
      }
    }
  }
  const params: Record<string, unknown> = {};
  for (const c of paramControls) {
    const v = coerce(c, form.params[c.name]);
    if (v === null) continue;
    const why = checkControl(c, v);
    if (why) errors[`params.${c.name}`] = `${c.label} ${why}`;
    params[c.name] = v;
  }
  if (form.workflow && Object.keys(params).length) request.params = params;
  // Bounds a workflow's metadata puts on the standard fields it sets.
  for (const [field, control] of Object.entries(standard)) {
    const value = (request as Record<string, unknown>)[field];
    const why = errors[field] ? null : checkControl(control, value);
    if (why) errors[field] = `${control.label} ${why}`;
  }

  let batch: BuiltRequest["batch"] = null;
  const count = form.batchCount ?? 1;
  const lines = form.promptPerLine ? form.prompt.split("\n").map((s) => s.trim()).filter(Boolean) : [];
  if (count > 1 || lines.length > 1) {
    const grid: Record<string, unknown[]> = {};
    if (count > 1) {
      const fixed = request.seed !== undefined && request.seed !== null && request.seed !== -1 ? request.seed : null;
      // Seeds per job: a fixed seed steps by n (the images of one job take seed, seed+1 ...).
      grid.seed = Array.from({ length: count }, (_, i) => (fixed !== null ? fixed + i * n : randomSeed()));
    }
    const jobs = Math.max(1, lines.length) * Math.max(1, count);
    if (jobs > 500) errors.batch = `That makes ${jobs} jobs; a batch may hold 500`;
    batch = { base: { ...request, prompt: lines[0] ?? request.prompt }, prompts: lines.length > 1 ? lines : [], grid };
  }
  return { request, batch, errors };
}

/** The message for the control `key` among `errors`: its own, else one of a field under it
 * (`hires` shows `hires.scale`'s), else one of the field above it (`loras.0.name` shows `loras.0`'s). */
export function errorFor(errors: FieldErrors, key: string): string | null {
  if (errors[key]) return errors[key];
  const below = Object.keys(errors).find((k) => k.startsWith(`${key}.`));
  if (below) return errors[below];
  const parts = key.split(".");
  for (let i = parts.length - 1; i > 0; i--) {
    const up = parts.slice(0, i).join(".");
    if (errors[up]) return errors[up];
  }
  return null;
}

/** Map a server error's field (`body.width`, `width`, `params.color`, `loras.0.weight`) to the
 * form's keys; null stays null (a form-level error). */
export function serverField(field: string | null | undefined): string | null {
  if (!field) return null;
  let f = field.replace(/^body\./, "").replace(/^base\./, "").replace(/^requests\.\d+\./, "");
  if (f === "denoise") f = "denoising_strength";
  if (f === "cfg") f = "cfg_scale";
  return f;
}

/** The form fields an asset's stored parameters (`GET /assets/{id}`: the request summary and what
 * the backend reported) fill when reused. Unknown or missing values are left out. */
export function formFromAsset(asset: {
  prompt?: string | null; negative_prompt?: string | null; seed?: number | null; width?: number | null;
  height?: number | null; provider?: string | null; model?: string | null; parameters?: Record<string, unknown>;
}): Partial<GenerateForm> {
  const p = asset.parameters ?? {};
  const num = (v: unknown) => (typeof v === "number" && Number.isFinite(v) ? v : null);
  const str = (v: unknown) => (typeof v === "string" && v ? v : null);
  const out: Partial<GenerateForm> = {};
  if (asset.prompt != null) out.prompt = asset.prompt;
  out.negativePrompt = asset.negative_prompt ?? "";
  if (asset.seed != null) out.seed = asset.seed;
  const w = asset.width ?? num(p.width);
  const h = asset.height ?? num(p.height);
  if (w) out.width = w;
  if (h) out.height = h;
  if (asset.provider) out.provider = asset.provider;
  const model = str(p.model) ?? asset.model ?? null;
  if (model) out.model = model;
  if (num(p.steps) !== null) out.steps = num(p.steps);
  if (num(p.cfg_scale) !== null) out.cfgScale = num(p.cfg_scale);
  if (str(p.sampler)) out.sampler = str(p.sampler);
  if (str(p.scheduler)) out.scheduler = str(p.scheduler);
  if (str(p.vae)) out.vae = str(p.vae);
  if (str(p.workflow)) out.workflow = str(p.workflow);
  if (str(p.media)) out.media = str(p.media)!;
  if (p.size_policy === "exact" || p.size_policy === "nearest") out.sizePolicy = p.size_policy;
  if (num(p.denoising_strength) !== null) out.strength = num(p.denoising_strength);
  if (Array.isArray(p.loras)) {
    out.loras = p.loras
      .filter((l): l is { name: string; weight?: number } => !!l && typeof (l as { name?: unknown }).name === "string")
      .map((l) => ({ name: l.name, weight: typeof l.weight === "number" ? l.weight : 1 }));
  }
  if (p.hires && typeof p.hires === "object") {
    const hz = p.hires as Record<string, unknown>;
    out.hires = {
      enabled: true, scale: num(hz.scale) ?? 2, steps: num(hz.steps), denoise: num(hz.denoising_strength) ?? 0.5,
      upscaler: str(hz.upscaler),
    };
  }
  if (p.params && typeof p.params === "object") out.params = { ...(p.params as Record<string, unknown>) };
  return out;
}
