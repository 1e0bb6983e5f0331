import { describe, expect, it } from "vitest";
import { bands, bucketLabel, duration, labelIndices, linearScale, niceStep, niceTicks, pct, usd } from "../src/lib/core/chart";

describe("ticks and scales", () => {
  it("picks 1/2/5 steps", () => {
    expect(niceStep(10, 5)).toBe(2);
    expect(niceStep(7, 5)).toBe(2);
    expect(niceStep(100, 5)).toBe(20);
    expect(niceStep(3, 5)).toBe(1);
    expect(niceStep(0.9, 5)).toBeCloseTo(0.2);
    expect(niceStep(0, 5)).toBe(1);
  });
  it("covers the maximum with round ticks from zero", () => {
    expect(niceTicks(10)).toEqual([0, 2, 4, 6, 8, 10]);
    expect(niceTicks(7)).toEqual([0, 2, 4, 6, 8]);
    expect(niceTicks(3)).toEqual([0, 1, 2, 3]);
    expect(niceTicks(0.9)).toEqual([0, 0.2, 0.4, 0.6, 0.8, 1]);
    expect(niceTicks(0)).toEqual([0, 1]);
    expect(niceTicks(2, 4, 0, true)).toEqual([0, 1, 2]);
    expect(niceTicks(1, 4, 0, true)).toEqual([0, 1]);
    expect(niceTicks(Number.NaN)).toEqual([0, 1]);
    const t = niceTicks(1234);
    expect(t[0]).toBe(0);
    expect(t[t.length - 1]).toBeGreaterThanOrEqual(1234);
  });
  it("maps a y axis bottom-up", () => {
    const s = linearScale(7, [100, 0]);
    expect(s.domain).toEqual([0, 8]);
    expect(s.map(0)).toBe(100);
    expect(s.map(8)).toBe(0);
    expect(s.map(4)).toBe(50);
  });
  it("splits bands and spreads labels", () => {
    const b = bands(4, 0, 100, 0.2);
    expect(b.band).toBe(25);
    expect(b.bar).toBe(20);
    expect(b.x(0)).toBe(2.5);
    expect(b.x(3)).toBe(77.5);
    expect(labelIndices(5, 8)).toEqual([0, 1, 2, 3, 4]);
    expect(labelIndices(24, 6)).toEqual([0, 4, 8, 12, 16, 20]);
    expect(labelIndices(0, 6)).toEqual([]);
  });
});

describe("formats", () => {
  it("formats rates, durations, dollars and buckets", () => {
    expect(pct(0.875)).toBe("87.5 %");
    expect(pct(1)).toBe("100 %");
    expect(pct(null)).toBe("–");
    expect(duration(0.0423)).toBe("42 ms");
    expect(duration(0.0002)).toBe("<1 ms");
    expect(duration(0)).toBe("0 ms");
    expect(duration(1.254)).toBe("1.25 s");
    expect(duration(42.34)).toBe("42.3 s");
    expect(duration(undefined)).toBe("–");
    expect(usd(0.04)).toBe("$0.0400");
    expect(usd(1.5)).toBe("$1.50");
    expect(usd(1234)).toBe("$1,234.00");
    expect(usd(null)).toBe("–");
    expect(bucketLabel("2026-11-21T14:00:00Z", "hour")).toBe("14:00");
    expect(bucketLabel("2026-11-21T00:00:00Z", "day")).toBe("Nov 21");
  });
});

import { capsSummary, sizeSummary } from "../src/lib/components/ProviderCard/sizes";

describe("provider size summary (provider cards)", () => {
  const base = { sizes: [], auto: false, ratios: [], multiple: 1, min: null, max: null, max_pixels: null, max_ratio: null, buckets: [], note: null };
  it("says each kind of rule in a few words", () => {
    expect(sizeSummary({ ...base, kind: "fixed", sizes: ["1024x1024", "1792x1024", "1024x1792"] })).toBe("1024x1024, 1792x1024, 1024x1792");
    expect(sizeSummary({ ...base, kind: "fixed", sizes: ["1024x1024"], auto: true })).toBe("1024x1024, auto");
    expect(sizeSummary({
      ...base, kind: "aspect_ratios",
      ratios: [{ ratio: "1:1", width: 1024, height: 1024, tier: "1K" }, { ratio: "1:1", width: 2048, height: 2048, tier: "2K" }, { ratio: "16:9", width: 1408, height: 768, tier: null }],
    })).toBe("aspect ratios 1:1, 16:9");
    expect(sizeSummary({ ...base, kind: "multiple_of", multiple: 64, min: 256, max: 2048 })).toBe("multiples of 64, 256-2048");
    expect(sizeSummary({ ...base, kind: "multiple_of", multiple: 8, max: 1536, max_pixels: 1048576 })).toBe("multiples of 8, up to 1536, ≤ 1.05 MP");
    expect(sizeSummary(null, 4096, 2048)).toBe("any size up to 4096x2048");
  });
  it("reads capabilities' prompt limit and text encoder", () => {
    const s = capsSummary({ max_width: 1792, max_height: 1792, max_prompt_chars: 4000, text_encoder: null,
      sizes: { kind: "fixed", sizes: ["1024x1024"] }, model_sizes: { "dall-e-2": { kind: "fixed", sizes: ["256x256"] } } });
    expect(s).toEqual({ sizes: "1024x1024", note: null, otherModels: 1, promptLimit: 4000, clip: false });
    expect(capsSummary({ text_encoder: "clip" })?.clip).toBe(true);
    expect(capsSummary(null)).toBeNull();
  });
});
