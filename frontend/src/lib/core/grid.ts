/**
 * The X/Y grid of the Generate page: up to two axes over seed, cfg_scale, steps, sampler or
 * scheduler, each with its values typed as a comma list ("1, 2, 3") or, for numbers, a range
 * "from-to step" ("20-40 10" is 20, 30, 40). The grid becomes the `grid` of
 * `POST /generations/batch`, which runs every combination (times the prompts) as one batch.
 */

/** A grid axis: a request field the batch route varies. */
export type GridAxisKey = "seed" | "cfg_scale" | "steps" | "sampler" | "scheduler";

/** What an axis holds: whole numbers, numbers, or names chosen from the provider's options. */
export interface GridAxisInfo {
  key: GridAxisKey;
  label: string;
  kind: "integer" | "number" | "choice";
  min?: number;
  max?: number;
}

/** The axes in the order the picker offers them (bounds as the backend's GenerationRequest). */
export const GRID_AXES: readonly GridAxisInfo[] = [
  { key: "seed", label: "Seed", kind: "integer", min: 0, max: Number.MAX_SAFE_INTEGER },
  { key: "cfg_scale", label: "CFG scale", kind: "number", min: 0, max: 100 },
  { key: "steps", label: "Steps", kind: "integer", min: 1, max: 1000 },
  { key: "sampler", label: "Sampler", kind: "choice" },
  { key: "scheduler", label: "Scheduler", kind: "choice" },
];

/** Jobs a batch may hold (the server refuses more). */
export const MAX_BATCH_JOBS = 500;

/** One axis as the user set it: `text` for numbers, `choices` for sampler/scheduler. */
export interface GridAxisValue {
  key: GridAxisKey | "";
  text: string;
  choices: string[];
}

/** The values of one axis, or why they cannot be read. */
export interface ParsedAxis {
  values: (number | string)[];
  error: string | null;
}

const NUM = String.raw`(\d+(?:\.\d+)?)`;
const RANGE = new RegExp(String.raw`^${NUM}\s*(?:-|\.\.|to)\s*${NUM}(?:\s*(?:,|\s)\s*(?:step\s*)?${NUM})?$`, "i");

/** Round away binary noise of a stepped range (0.1 + 0.2 -> 0.3). */
function tidy(v: number): number {
  return Math.round(v * 1e6) / 1e6;
}

/**
 * The values of axis `info` from `text` (numbers) or `choices` (sampler/scheduler). Numbers:
 * "a, b, c" or "from-to step" (step 1 when left out; at most {@link MAX_BATCH_JOBS} values).
 * Duplicates are dropped, order kept. An empty axis gives no values and no error.
 */
export function parseAxis(info: GridAxisInfo, text: string, choices: string[] = []): ParsedAxis {
  if (info.kind === "choice") {
    return { values: Array.from(new Set(choices.filter((c) => c.trim()))), error: null };
  }
  const src = text.trim();
  if (!src) return { values: [], error: null };
  let values: number[] = [];
  const range = RANGE.exec(src);
  if (range) {
    const from = Number(range[1]);
    const to = Number(range[2]);
    const step = range[3] !== undefined ? Number(range[3]) : 1;
    if (!(step > 0)) return { values: [], error: `${info.label}: the step must be more than 0` };
    if (to < from) return { values: [], error: `${info.label}: the range ${from}-${to} runs backwards` };
    const count = Math.floor((to - from) / step + 1e-9) + 1;
    if (count > MAX_BATCH_JOBS) {
      return { values: [], error: `${info.label}: ${from}-${to} step ${step} makes ${count} values; a batch may hold ${MAX_BATCH_JOBS} jobs` };
    }
    values = Array.from({ length: count }, (_, i) => tidy(from + i * step));
  } else {
    for (const part of src.split(/[,;\s]+/).filter(Boolean)) {
      const v = Number(part);
      if (!Number.isFinite(v)) {
        return { values: [], error: `${info.label}: "${part}" is not a number; write a comma list or "from-to step"` };
      }
      values.push(v);
    }
  }
  for (const v of values) {
    if (info.kind === "integer" && !Number.isInteger(v)) return { values: [], error: `${info.label}: ${v} is not a whole number` };
    if (info.min !== undefined && v < info.min) return { values: [], error: `${info.label}: ${v} is under ${info.min}` };
    if (info.max !== undefined && v > info.max) return { values: [], error: `${info.label}: ${v} is over ${info.max}` };
  }
  return { values: Array.from(new Set(values)), error: null };
}

/** The axis description of `key`. */
export function axisInfo(key: GridAxisKey): GridAxisInfo {
  return GRID_AXES.find((a) => a.key === key)!;
}

/** What the grid builder makes: the `grid` body, the jobs it asks for and the errors. */
export interface GridPlan {
  grid: Partial<Record<GridAxisKey, (number | string)[]>>;
  /** Combinations of the axes' values (1 with no axis). */
  combinations: number;
  /** combinations x `prompts` (the number of prompts the batch runs). */
  jobs: number;
  errors: string[];
}

/**
 * Plan a grid over `axes` (at most two; unset ones skipped) for `prompts` prompts. Errors: an
 * axis chosen twice, values that do not parse, a chosen axis without values, and more than
 * {@link MAX_BATCH_JOBS} jobs (with the count in the message).
 */
export function planGrid(axes: GridAxisValue[], prompts = 1): GridPlan {
  const grid: GridPlan["grid"] = {};
  const errors: string[] = [];
  let combinations = 1;
  for (const axis of axes) {
    if (!axis.key) continue;
    const info = axisInfo(axis.key);
    if (grid[axis.key]) {
      errors.push(`${info.label} is chosen twice; pick two different axes`);
      continue;
    }
    const parsed = parseAxis(info, axis.text, axis.choices);
    if (parsed.error) errors.push(parsed.error);
    else if (!parsed.values.length) errors.push(`${info.label}: give at least one value`);
    else {
      grid[axis.key] = parsed.values;
      combinations *= parsed.values.length;
    }
  }
  const jobs = combinations * Math.max(1, prompts);
  if (jobs > MAX_BATCH_JOBS) errors.push(`That makes ${jobs.toLocaleString("en")} jobs; a batch may hold ${MAX_BATCH_JOBS}`);
  return { grid, combinations, jobs, errors };
}
