/** Short texts the queue shows for a job (no Svelte state: unit-tested on their own). */

/** "prompt shortened from N to M characters" when the LLM shortened the job's prompt, else
 * the optimizer's warning (LLM down or slow), from the job's `prompt_info`; null without one. */
export function promptNoteOf(info: Record<string, unknown> | null | undefined): string | null {
  if (!info) return null;
  const n = (v: unknown) => (typeof v === "number" ? v.toLocaleString("en") : "?");
  if (info.changed) {
    const secs = typeof info.seconds === "number" ? ` in ${info.seconds.toFixed(1)} s` : "";
    return `prompt shortened from ${n(info.original_length)} to ${n(info.length)} characters${secs}`;
  }
  return typeof info.warning === "string" && info.warning ? `prompt not shortened: ${info.warning}` : null;
}

/** The grid values of a batch job, as "seed 11 · steps 20 · sampler euler" (the fields a grid
 * varies that its request sets); null when it sets none. */
export function gridLabelOf(request: Record<string, unknown> | null | undefined): string | null {
  if (!request) return null;
  const parts: string[] = [];
  for (const [key, label] of [["seed", "seed"], ["steps", "steps"], ["cfg_scale", "CFG"], ["sampler", "sampler"], ["scheduler", "scheduler"]] as const) {
    const v = request[key];
    if ((typeof v === "number" && !(key === "seed" && v === -1)) || (typeof v === "string" && v)) parts.push(`${label} ${v}`);
  }
  return parts.length ? parts.join(" · ") : null;
}
