/** Pure helpers of the Models page: grouping by kind and filtering. */
import type { Model } from "../../lib/api/client";

/** Kinds in the order the page shows them; others follow alphabetically. */
export const KIND_ORDER = ["checkpoint", "lora", "vae", "upscaler", "embedding", "controlnet"];

/** The label of a kind ("checkpoint" -> "Checkpoints"). */
export function kindLabel(kind: string): string {
  const k = kind || "other";
  const known: Record<string, string> = { lora: "LoRAs", vae: "VAEs", controlnet: "ControlNets" };
  if (known[k]) return known[k];
  const plural = k.endsWith("s") ? k : `${k}s`;
  return plural.charAt(0).toUpperCase() + plural.slice(1);
}

/** `models` grouped by `kind`, groups ordered by {@link KIND_ORDER}, models by name. */
export function groupByKind(models: Model[]): { kind: string; models: Model[] }[] {
  const groups = new Map<string, Model[]>();
  for (const m of models) {
    const k = m.kind || "other";
    groups.set(k, [...(groups.get(k) ?? []), m]);
  }
  const rank = (k: string) => {
    const i = KIND_ORDER.indexOf(k);
    return i < 0 ? KIND_ORDER.length : i;
  };
  return [...groups.entries()]
    .sort(([a], [b]) => rank(a) - rank(b) || a.localeCompare(b))
    .map(([kind, list]) => ({ kind, models: [...list].sort((a, b) => (a.name ?? a.id).localeCompare(b.name ?? b.id)) }));
}

/** The models whose id, name or kind contains every word of `query` (case-insensitive). */
export function filterModels(models: Model[], query: string): Model[] {
  const words = query.toLowerCase().split(/\s+/).filter(Boolean);
  if (!words.length) return models;
  return models.filter((m) => {
    const hay = `${m.id} ${m.name ?? ""} ${m.kind}`.toLowerCase();
    return words.every((w) => hay.includes(w));
  });
}

/** Keys of `GET /providers/{id}/options` that list add-on models, and the kind each becomes. */
export const OPTION_KINDS: Record<string, string> = { loras: "lora", vaes: "vae", upscalers: "upscaler", embeddings: "embedding", controlnets: "controlnet" };

/**
 * `models` plus the add-on models a provider's options list (LoRAs, VAEs, upscalers ... that
 * `GET /models` does not return), each as a model of its kind; names already listed are skipped.
 */
export function withOptionModels(models: Model[], options: Record<string, unknown> | null, provider: string): Model[] {
  if (!options) return models;
  const out = [...models];
  const seen = new Set(models.map((m) => `${m.kind}\u0000${m.id}`));
  for (const [key, kind] of Object.entries(OPTION_KINDS)) {
    const names = options[key];
    if (!Array.isArray(names)) continue;
    for (const name of names) {
      if (typeof name !== "string" || seen.has(`${kind}\u0000${name}`)) continue;
      seen.add(`${kind}\u0000${name}`);
      out.push({ id: name, name, kind, provider, backend: null, details: {} });
    }
  }
  return out;
}
