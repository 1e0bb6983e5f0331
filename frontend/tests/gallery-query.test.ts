import { describe, expect, it } from "vitest";
import {
  anyFilter,
  apiQuery,
  batchIdFromParams,
  batchLabel,
  filtersFromParams,
  withFilters,
  withoutBatch,
} from "../src/pages/Gallery/query";

const BATCH = "54012d793b71428facedf889ad62de3d";

describe("gallery query helpers", () => {
  it("reads the filters from the hash, dropping malformed values", () => {
    const f = filtersFromParams(new URLSearchParams("q=fox&media=gif&from=2026-01-01&to=yesterday&provider=comfy"));
    expect(f).toEqual({ q: "fox", provider: "comfy", model: "", media: "", from: "2026-01-01", to: "", owner: "" });
    expect(anyFilter(f)).toBe(true);
    expect(anyFilter(filtersFromParams(new URLSearchParams("asset=x")))).toBe(false);
  });

  it("reads the batch filter and labels its chip with the short id", () => {
    expect(batchIdFromParams(new URLSearchParams(`batch_id=${BATCH}`))).toBe(BATCH);
    expect(batchIdFromParams(new URLSearchParams("batch_id="))).toBeNull();
    expect(batchIdFromParams(new URLSearchParams("batch_id=a%20b%3Cc"))).toBeNull();
    expect(batchIdFromParams(new URLSearchParams("q=x"))).toBeNull();
    expect(batchLabel(BATCH)).toBe("Batch 54012d79");
  });

  it("keeps the batch when the other filters change and drops it when its chip is removed", () => {
    const params = new URLSearchParams(`batch_id=${BATCH}&q=old&asset=a1`);
    const next = withFilters(params, { ...filtersFromParams(params), q: "new" });
    expect(next).toEqual({ batch_id: BATCH, asset: "a1", q: "new" });
    expect(withoutBatch(new URLSearchParams(next))).toEqual({ asset: "a1", q: "new" });
  });

  it("puts the batch id and the filters in the GET /assets query", () => {
    const f = filtersFromParams(new URLSearchParams("q=%20fox%20&media=video"));
    expect(apiQuery(f, BATCH)).toEqual({ batch_id: BATCH, q: "fox", media: "video" });
    expect(apiQuery(f)).toEqual({ q: "fox", media: "video" });
    const day = apiQuery(filtersFromParams(new URLSearchParams("from=2026-03-01&to=2026-03-01")));
    expect(new Date(day.created_before!).getTime() - new Date(day.created_after!).getTime()).toBe(24 * 3600 * 1000);
  });
});
