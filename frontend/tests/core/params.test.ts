import { describe, expect, it } from "vitest";
import api from "../fixtures/comfyui/api_txt2img.json";
import subset from "../fixtures/comfyui/object_info_subset.json";
import type { ApiPrompt } from "../../src/lib/core/convert";
import type { ObjectInfo } from "../../src/lib/core/objectInfo";
import { checkParams, exposeInput, freeName, fromSlotsAndParams, parametersSchema, toSlotsAndParams, type ExposedParams } from "../../src/lib/core/params";

const info = subset as unknown as ObjectInfo;
const prompt = api as ApiPrompt;

describe("exposed parameters", () => {
  it("types an exposed input from object_info", () => {
    expect(exposeInput(info, prompt, "3", "steps")).toEqual({ targets: [["3", "steps"]], title: "Steps", type: "integer", minimum: 1, maximum: 10000 });
    const sampler = exposeInput(info, prompt, "3", "sampler_name");
    expect(sampler).toMatchObject({ type: "string", title: "Sampler name" });
    expect(sampler.enum).toContain("euler");
    expect(exposeInput(info, prompt, "3", "cfg")).toMatchObject({ type: "number", minimum: 0, maximum: 100 });
  });

  it("builds the JSON Schema the backend publishes", () => {
    const params: ExposedParams = {
      steps: { targets: [["3", "steps"]], type: "integer", title: "Steps", minimum: 1, maximum: 50, step: 1, default: 25 },
      cfg: { targets: [["3", "cfg"]], type: "number", title: "CFG" },
      sampler: { targets: [["3", "sampler_name"]], title: "Sampler", enum: ["euler", "ddim"] },
      seed: { targets: [["3", "seed"]] },
      init_image: { targets: [["9", "filename_prefix"]] },
    };
    const schema = parametersSchema(params, prompt, "txt", "a graph");
    expect(schema).toEqual({
      type: "object",
      title: "txt",
      description: "a graph",
      properties: {
        steps: { type: "integer", title: "Steps", default: 25, minimum: 1, maximum: 50, multipleOf: 1 },
        cfg: { type: "number", title: "CFG", default: 8 },
        sampler: { type: "string", title: "Sampler", default: "euler", enum: ["euler", "ddim"] },
        seed: { type: "integer", default: 156680208700286 },
      },
    });
  });

  it("splits into slots and params and back", () => {
    const params: ExposedParams = { steps: { targets: [["3", "steps"]], title: "Steps", maximum: 40, description: "" } };
    const split = toSlotsAndParams(params);
    expect(split).toEqual({ slots: { steps: [["3", "steps"]] }, params: { steps: { title: "Steps", maximum: 40 } } });
    expect(fromSlotsAndParams(split.slots, split.params)).toEqual({ steps: { targets: [["3", "steps"]], title: "Steps", maximum: 40 } });
    expect(toSlotsAndParams({ seed: { targets: [["3", "seed"]] } }).params).toEqual({});
  });

  it("finds free names and checks parameters", () => {
    expect(freeName({ steps: { targets: [] } }, "steps")).toBe("steps_2");
    expect(freeName({}, "steps")).toBe("steps");
    expect(checkParams({ steps: { targets: [["3", "steps"]], minimum: 1, maximum: 5, default: 3 } }, prompt)).toEqual([]);
    const msgs = checkParams({
      "a b": { targets: [["99", "x"]] },
      steps: { targets: [["3", "nope"]], minimum: 9, maximum: 5, default: 10 },
      sampler: { targets: [["3", "sampler_name"]], enum: ["euler"], default: "ddim" },
    }, prompt).map((p) => p.message);
    expect(msgs).toEqual([
      "parameter name 'a b' may only use letters, digits, _ . -",
      "a b: node 99 does not exist",
      "steps: node 3 has no value input 'nope'",
      "steps: minimum is above maximum",
      "steps: default 10 is above the maximum",
      "sampler: default is not one of the allowed values",
    ]);
  });
});
