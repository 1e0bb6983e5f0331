/**
 * A provider's accepted sizes and prompt limit in a short human form for its card.
 */
import { readSizeRule, type SizeRule } from "../../core/controls";

/** A size rule in a few words (pixels): "1024x1024, 1792x1024, auto", "aspect ratios 1:1,
 * 16:9, 9:16" or "multiples of 64, 256-2048" (plus ", ≤ 1.05 MP" and the ratio bound when
 * set); "any size up to W x H" without a rule. */
export function sizeSummary(rule: SizeRule | null, maxWidth = 2048, maxHeight = 2048): string {
  if (!rule) return `any size up to ${maxWidth}x${maxHeight}`;
  if (rule.kind === "fixed") return [...rule.sizes, ...(rule.auto ? ["auto"] : [])].join(", ") || "none";
  if (rule.kind === "aspect_ratios") {
    const ratios = [...new Set(rule.ratios.map((r) => r.ratio))];
    return `aspect ratios ${ratios.join(", ")}`;
  }
  let text = rule.multiple > 1 ? `multiples of ${rule.multiple}` : "any size";
  if (rule.min !== null && rule.max !== null) text += `, ${rule.min}-${rule.max}`;
  else if (rule.max !== null) text += `, up to ${rule.max}`;
  if (rule.max_pixels !== null) text += `, ≤ ${(rule.max_pixels / 1e6).toFixed(2).replace(/\.?0+$/, "")} MP`;
  if (rule.max_ratio !== null) text += `, ratio ≤ ${rule.max_ratio}:1`;
  return text;
}

/** What a provider card shows of its capabilities (`GET /providers` `capabilities`, loose
 * JSON): the size summary, the rule's note, how many other models have their own rule, the
 * prompt limit (characters) and whether a CLIP text encoder (77 tokens) reads the prompt.
 * Null when the provider reported no capabilities (it did not load). */
export function capsSummary(raw: Record<string, unknown> | null | undefined): {
  sizes: string; note: string | null; otherModels: number; promptLimit: number | null; clip: boolean;
} | null {
  if (!raw) return null;
  const num = (v: unknown, d: number) => (typeof v === "number" ? v : d);
  const rule = readSizeRule(raw.sizes);
  const models = raw.model_sizes && typeof raw.model_sizes === "object" ? Object.keys(raw.model_sizes) : [];
  return {
    sizes: sizeSummary(rule, num(raw.max_width, 2048), num(raw.max_height, 2048)),
    note: rule?.note ?? null,
    otherModels: models.length,
    promptLimit: typeof raw.max_prompt_chars === "number" ? raw.max_prompt_chars : null,
    clip: raw.text_encoder === "clip",
  };
}
