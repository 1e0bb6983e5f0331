/**
 * The gallery's filters, as kept in the URL hash (`#/gallery?q=fox&provider=x&media=video&from=
 * 2026-01-01&to=2026-01-31`) and as query parameters of `GET /assets`. `batch_id` (one batch's
 * assets, `#/gallery?batch_id=<id>`) is kept apart: the queue links to it and it shows as a chip.
 */
import type { GalleryFilterValues } from "./GalleryFilters/types";

export const FILTER_KEYS = ["q", "provider", "model", "media", "from", "to", "owner"] as const;

const DATE = /^\d{4}-\d{2}-\d{2}$/;

/** The filters in hash parameters (unknown or malformed values become empty). */
export function filtersFromParams(params: URLSearchParams): GalleryFilterValues {
  const media = params.get("media");
  const date = (k: string) => {
    const v = params.get(k) ?? "";
    return DATE.test(v) ? v : "";
  };
  return {
    q: params.get("q") ?? "",
    provider: params.get("provider") ?? "",
    model: params.get("model") ?? "",
    media: media === "image" || media === "video" ? media : "",
    from: date("from"),
    to: date("to"),
    owner: params.get("owner") ?? "",
  };
}

/** `params` with the filter keys replaced by the non-empty values of `filters` (other keys,
 * such as `asset`, are kept). */
export function withFilters(params: URLSearchParams, filters: GalleryFilterValues): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of params) if (!(FILTER_KEYS as readonly string[]).includes(k)) out[k] = v;
  for (const k of FILTER_KEYS) {
    const v = filters[k].trim();
    if (v) out[k] = v;
  }
  return out;
}

/** The batch id of `#/gallery?batch_id=<id>` (hex and dashes only, else null). */
export function batchIdFromParams(params: URLSearchParams): string | null {
  const v = (params.get("batch_id") ?? "").trim();
  return /^[0-9a-zA-Z-]{1,64}$/.test(v) ? v : null;
}

/** The chip text of a batch filter: "Batch " and the id's first 8 characters. */
export function batchLabel(batchId: string): string {
  return `Batch ${batchId.slice(0, 8)}`;
}

/** `params` without the batch filter (what removing its chip leaves). */
export function withoutBatch(params: URLSearchParams): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of params) if (k !== "batch_id") out[k] = v;
  return out;
}

/** Local midnight of a `YYYY-MM-DD` day, `days` days later, as an ISO instant (UTC). */
function dayStart(day: string, days = 0): string {
  const [y, m, d] = day.split("-").map(Number);
  return new Date(y, m - 1, d + days).toISOString();
}

/** The query of `GET /assets` for these filters (and one batch's assets with `batchId`): `to`
 * includes its whole (local) day. */
export function apiQuery(filters: GalleryFilterValues, batchId: string | null = null): {
  q?: string; provider?: string; model?: string; media?: "image" | "video";
  created_after?: string; created_before?: string; owner?: string; batch_id?: string;
} {
  const out: ReturnType<typeof apiQuery> = {};
  if (batchId) out.batch_id = batchId;
  if (filters.q.trim()) out.q = filters.q.trim();
  if (filters.provider) out.provider = filters.provider;
  if (filters.model.trim()) out.model = filters.model.trim();
  if (filters.media) out.media = filters.media;
  if (filters.from) out.created_after = dayStart(filters.from);
  if (filters.to) out.created_before = dayStart(filters.to, 1);
  if (filters.owner.trim()) out.owner = filters.owner.trim();
  return out;
}

/** Whether any filter is set. */
export function anyFilter(filters: GalleryFilterValues): boolean {
  return FILTER_KEYS.some((k) => filters[k].trim() !== "");
}
