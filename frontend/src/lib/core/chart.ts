/**
 * Scale and tick math for the Settings page's hand-written SVG charts (no chart library), and
 * the number formats of the provider analytics table. Plain TypeScript: no Svelte, no DOM.
 */

/** A linear map from a data domain to pixels (range); `ticks` are "nice" round values. */
export interface LinearScale {
  domain: [number, number];
  range: [number, number];
  ticks: number[];
  /** Data value -> pixel position. */
  map: (v: number) => number;
}

/** The "nice" step (1, 2 or 5 times a power of ten) that divides `span` into about `count`
 * intervals; 1 for an empty or invalid span. */
export function niceStep(span: number, count = 5): number {
  if (!(span > 0) || !Number.isFinite(span) || count < 1) return 1;
  const raw = span / count;
  const pow = Math.pow(10, Math.floor(Math.log10(raw)));
  const f = raw / pow;
  const nice = f <= 1 ? 1 : f <= 2 ? 2 : f <= 5 ? 5 : 10;
  return nice * pow;
}

/** Round ticks from 0 (or `min` when negative) up to at least `max`, about `count` intervals;
 * `[0, 1]` when there is nothing to show (max <= 0). Values are rounded to the step's decimals;
 * `integer` keeps the step a whole number (for counts). */
export function niceTicks(max: number, count = 5, min = 0, integer = false): number[] {
  const lo = Math.min(0, min);
  if (!(max > lo) || !Number.isFinite(max)) return [0, 1];
  const step = integer ? Math.max(1, niceStep(max - lo, count)) : niceStep(max - lo, count);
  const decimals = Math.max(0, -Math.floor(Math.log10(step)));
  const start = Math.floor(lo / step) * step;
  const out: number[] = [];
  for (let v = start; v < max + step * 0.5; v += step) {
    out.push(Number(v.toFixed(decimals)));
    if (out.length > 50) break;
  }
  if (out[out.length - 1] < max) out.push(Number((out[out.length - 1] + step).toFixed(decimals)));
  return out;
}

/** A linear scale whose domain runs from the first to the last nice tick covering `[0, max]`,
 * mapped onto `range` (pixels; give `[bottom, top]` for a y axis); `integer` for counts. */
export function linearScale(max: number, range: [number, number], count = 5, integer = false): LinearScale {
  const ticks = niceTicks(max, count, 0, integer);
  const d0 = ticks[0];
  const d1 = ticks[ticks.length - 1];
  const k = (range[1] - range[0]) / (d1 - d0 || 1);
  return { domain: [d0, d1], range, ticks, map: (v) => range[0] + (v - d0) * k };
}

/** Equal bands for `n` categories across `[start, end]` pixels: each band's left edge and width,
 * and the bar width inside it (`padding` 0..1 of the band left empty). */
export function bands(n: number, start: number, end: number, padding = 0.2): { x: (i: number) => number; band: number; bar: number } {
  const band = n > 0 ? (end - start) / n : 0;
  const bar = Math.max(1, band * (1 - padding));
  return { x: (i) => start + i * band + (band - bar) / 2, band, bar };
}

/** Indices of at most `max` evenly spread labels among `n` (always the first and, when it fits,
 * the last), so axis labels do not overlap. */
export function labelIndices(n: number, max: number): number[] {
  if (n <= 0) return [];
  if (n <= max) return Array.from({ length: n }, (_, i) => i);
  const every = Math.ceil(n / Math.max(1, max));
  const out: number[] = [];
  for (let i = 0; i < n; i += every) out.push(i);
  return out;
}

/** A fraction 0..1 as a percentage ("87.5 %", "100 %"); "–" for null. */
export function pct(rate: number | null | undefined): string {
  if (rate === null || rate === undefined || !Number.isFinite(rate)) return "–";
  const v = Math.round(rate * 1000) / 10;
  return `${v} %`;
}

/** Seconds as "850 ms" below one second, else "1.25 s" (then "12.3 s", "125 s"); "–" for null. */
export function duration(seconds: number | null | undefined): string {
  if (seconds === null || seconds === undefined || !Number.isFinite(seconds)) return "–";
  if (seconds > 0 && seconds < 0.001) return "<1 ms";
  if (seconds < 1) return `${Math.round(seconds * 1000)} ms`;
  if (seconds < 10) return `${seconds.toFixed(2)} s`;
  if (seconds < 100) return `${seconds.toFixed(1)} s`;
  return `${Math.round(seconds)} s`;
}

/** US dollars: "$0.0400", "$1.50", "$1,234.00"; "–" for null. Small sums keep 4 decimals. */
export function usd(amount: number | null | undefined): string {
  if (amount === null || amount === undefined || !Number.isFinite(amount)) return "–";
  const digits = amount !== 0 && Math.abs(amount) < 1 ? 4 : 2;
  return "$" + amount.toLocaleString("en-US", { minimumFractionDigits: digits, maximumFractionDigits: digits });
}

/** A bucket's start (ISO 8601, UTC) as an axis label: "14:00" by the hour, "Nov 21" by the day
 * (UTC, so labels do not depend on the browser's zone). */
export function bucketLabel(start: string, bucket: "hour" | "day"): string {
  const d = new Date(start);
  if (Number.isNaN(d.getTime())) return start;
  if (bucket === "hour") return `${String(d.getUTCHours()).padStart(2, "0")}:00`;
  const months = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"];
  return `${months[d.getUTCMonth()]} ${d.getUTCDate()}`;
}
