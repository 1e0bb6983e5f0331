import { describe, expect, it } from "vitest";
import subset from "../fixtures/comfyui/object_info_subset.json";
import { nodeSpec, searchNodes, jsonType, type ObjectInfo } from "../../src/lib/core/objectInfo";

const info = subset as unknown as ObjectInfo;

describe("nodeSpec", () => {
  it("types KSampler's widgets and sockets", () => {
    const spec = nodeSpec(info, "KSampler")!;
    const by = Object.fromEntries(spec.inputs.map((i) => [i.name, i]));
    expect(spec.inputs.map((i) => i.name)).toEqual(["model", "seed", "steps", "cfg", "sampler_name", "scheduler", "positive", "negative", "latent_image", "denoise"]);
    expect(by.model.widget).toBeNull();
    expect(by.model.type).toBe("MODEL");
    expect(by.seed).toMatchObject({ widget: "INT", min: 0, extraValues: 1, required: true });
    expect(by.steps).toMatchObject({ widget: "INT", default: 20, min: 1, max: 10000, extraValues: 0 });
    expect(by.cfg).toMatchObject({ widget: "FLOAT", step: 0.1, max: 100 });
    expect(by.sampler_name.widget).toBe("COMBO");
    expect(by.sampler_name.choices).toContain("euler");
    expect(by.sampler_name.default).toBe("euler");
    expect(spec.outputs).toEqual([{ index: 0, name: "LATENT", type: "LATENT", isList: false }]);
    expect(spec.outputNode).toBe(false);
  });

  it("knows multiline text, booleans, uploads and output nodes", () => {
    expect(nodeSpec(info, "CLIPTextEncode")!.inputs.find((i) => i.name === "text")).toMatchObject({ widget: "STRING", multiline: true });
    expect(nodeSpec(info, "FixtureSleepProgress")!.inputs.find((i) => i.name === "preview")).toMatchObject({ widget: "BOOLEAN", default: true });
    expect(nodeSpec(info, "LoadImage")!.inputs[0]).toMatchObject({ widget: "COMBO", extraValues: 1, choices: ["example.png"] });
    expect(nodeSpec(info, "SaveImage")!.outputNode).toBe(true);
    expect(nodeSpec(info, "CheckpointLoaderSimple")!.outputs.map((o) => o.type)).toEqual(["MODEL", "CLIP", "VAE"]);
    expect(nodeSpec(info, "Missing")).toBeNull();
  });

  it("searches by name, display name and category", () => {
    expect(searchNodes(info, "checkpoint").map((s) => s.classType)).toEqual(["CheckpointLoaderSimple"]);
    expect(searchNodes(info, "testing").map((s) => s.classType).sort()).toEqual(["FixtureRaiseError", "FixtureSleepProgress"]);
    expect(searchNodes(info, "save image").map((s) => s.classType)).toEqual(["SaveImage"]);
    expect(searchNodes(info, "").length).toBe(Object.keys(info).length);
  });

  it("maps widget kinds to JSON types", () => {
    expect([jsonType("INT"), jsonType("FLOAT"), jsonType("COMBO"), jsonType("BOOLEAN"), jsonType(null)]).toEqual(["integer", "number", "string", "boolean", undefined]);
  });
});
