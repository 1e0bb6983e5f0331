import { describe, expect, it } from "vitest";
import { axisInfo, parseAxis, planGrid } from "../src/lib/core/grid";

describe("grid axes", () => {
  it("reads comma lists and ranges with a step", () => {
    expect(parseAxis(axisInfo("seed"), "1, 2,3").values).toEqual([1, 2, 3]);
    expect(parseAxis(axisInfo("steps"), "20-40 10").values).toEqual([20, 30, 40]);
    expect(parseAxis(axisInfo("steps"), "20-40 step 10").values).toEqual([20, 30, 40]);
    expect(parseAxis(axisInfo("cfg_scale"), "5-6 0.5").values).toEqual([5, 5.5, 6]);
    expect(parseAxis(axisInfo("cfg_scale"), "0.1-0.3 0.1").values).toEqual([0.1, 0.2, 0.3]);
    expect(parseAxis(axisInfo("seed"), "7-9").values).toEqual([7, 8, 9]);
    expect(parseAxis(axisInfo("seed"), "4, 4, 5").values).toEqual([4, 5]);
    expect(parseAxis(axisInfo("seed"), "  ")).toEqual({ values: [], error: null });
  });

  it("says what is wrong with bad values", () => {
    expect(parseAxis(axisInfo("steps"), "20, x").error).toContain('"x" is not a number');
    expect(parseAxis(axisInfo("steps"), "2.5").error).toContain("not a whole number");
    expect(parseAxis(axisInfo("steps"), "0, 5").error).toContain("under 1");
    expect(parseAxis(axisInfo("steps"), "40-20 5").error).toContain("backwards");
    expect(parseAxis(axisInfo("seed"), "1-1000").error).toContain("makes 1000 values");
  });

  it("takes sampler and scheduler names from the choices", () => {
    expect(parseAxis(axisInfo("sampler"), "", ["euler", "dpmpp_2m", "euler"]).values).toEqual(["euler", "dpmpp_2m"]);
  });

  it("plans the grid body and counts the jobs", () => {
    const plan = planGrid([
      { key: "seed", text: "1, 2", choices: [] },
      { key: "steps", text: "10-20 10", choices: [] },
    ]);
    expect(plan.grid).toEqual({ seed: [1, 2], steps: [10, 20] });
    expect(plan.jobs).toBe(4);
    expect(plan.errors).toEqual([]);
    expect(planGrid([{ key: "seed", text: "1, 2", choices: [] }], 3).jobs).toBe(6);
    expect(planGrid([{ key: "", text: "", choices: [] }]).jobs).toBe(1);
  });

  it("refuses over 500 jobs, an axis chosen twice and an axis without values", () => {
    const big = planGrid([
      { key: "seed", text: "1-30", choices: [] },
      { key: "steps", text: "1-20", choices: [] },
    ]);
    expect(big.jobs).toBe(600);
    expect(big.errors).toEqual(["That makes 600 jobs; a batch may hold 500"]);
    expect(planGrid([{ key: "seed", text: "1", choices: [] }, { key: "seed", text: "2", choices: [] }]).errors[0]).toContain("chosen twice");
    expect(planGrid([{ key: "sampler", text: "", choices: [] }]).errors[0]).toContain("at least one value");
  });
});
