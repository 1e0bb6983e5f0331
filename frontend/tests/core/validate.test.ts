import { describe, expect, it } from "vitest";
import api from "../fixtures/comfyui/api_txt2img.json";
import subset from "../fixtures/comfyui/object_info_subset.json";
import { checkLink, typesMatch, validatePrompt } from "../../src/lib/core/validate";
import { nodeSpec, type ObjectInfo } from "../../src/lib/core/objectInfo";
import type { ApiPrompt } from "../../src/lib/core/convert";

const info = subset as unknown as ObjectInfo;
const clone = <T>(v: T): T => JSON.parse(JSON.stringify(v)) as T;
// the recording's object_info has no checkpoints installed: give it the graph's one
const withCkpt = clone(info);
(withCkpt.CheckpointLoaderSimple.input!.required!.ckpt_name as unknown[])[0] = ["v1-5-pruned-emaonly-fp16.safetensors"];

const sleepy: ApiPrompt = {
  "1": { class_type: "EmptyImage", inputs: { width: 64, height: 64, batch_size: 1, color: 0 } },
  "2": { class_type: "FixtureSleepProgress", inputs: { image: ["1", 0], steps: 3, step_seconds: 0.1, preview: true, progress_text: true } },
  "3": { class_type: "SaveImage", inputs: { images: ["2", 0], filename_prefix: "x" } },
};

describe("link checks", () => {
  it("matches equal types and *", () => {
    expect(typesMatch("IMAGE", "IMAGE")).toBe(true);
    expect(typesMatch("IMAGE", "LATENT")).toBe(false);
    expect(typesMatch("*", "LATENT")).toBe(true);
    expect(typesMatch("IMAGE", "IMAGE,MASK")).toBe(true);
  });

  it("refuses a wrong type and a link into an unconverted widget", () => {
    const sampler = nodeSpec(info, "KSampler")!;
    const latent = nodeSpec(info, "EmptyLatentImage")!.outputs[0];
    const image = nodeSpec(info, "EmptyImage")!.outputs[0];
    const input = (n: string) => sampler.inputs.find((i) => i.name === n)!;
    expect(checkLink(latent, input("latent_image"))).toBeNull();
    expect(checkLink(image, input("latent_image"))).toMatch(/cannot connect IMAGE .* LATENT/);
    expect(checkLink({ type: "INT", name: "INT" }, input("steps"))).toMatch(/convert it/);
    expect(checkLink({ type: "INT", name: "INT" }, input("steps"), true)).toBeNull();
    expect(checkLink({ type: "INT", name: "INT" }, input("sampler_name"), true)).toMatch(/COMBO/);
  });
});

describe("validatePrompt", () => {
  it("passes good graphs", () => {
    expect(validatePrompt(api as ApiPrompt, withCkpt)).toEqual([]);
    expect(validatePrompt(sleepy, info)).toEqual([]);
  });

  it("reports a checkpoint that is not installed, as ComfyUI would", () => {
    expect(validatePrompt(api as ApiPrompt, info)).toEqual([
      { node_id: "4", input: "ckpt_name", message: expect.stringMatching(/not one of its choices \(none are installed\)/) },
    ]);
  });

  it("reports every kind of problem with its node and input", () => {
    const bad = clone(api) as ApiPrompt;
    bad["3"].inputs.steps = 0; // below min
    bad["3"].inputs.cfg = 1000; // above max
    bad["3"].inputs.sampler_name = "nope"; // not a choice
    delete bad["3"].inputs.scheduler; // missing required
    bad["8"].inputs.vae = ["44", 0]; // missing node
    bad["6"].inputs.clip = ["4", 7]; // missing output index
    bad["9"].inputs.images = ["5", 0]; // LATENT into IMAGE
    bad["7"].class_type = "Mystery"; // unknown class
    const problems = validatePrompt(bad, withCkpt);
    const at = (n: string, i?: string) => problems.filter((p) => p.node_id === n && p.input === i).map((p) => p.message);
    expect(at("3", "steps")[0]).toMatch(/below its minimum 1/);
    expect(at("3", "cfg")[0]).toMatch(/above its maximum 100/);
    expect(at("3", "sampler_name")[0]).toMatch(/not one of its choices/);
    expect(at("3", "scheduler")[0]).toMatch(/required input 'scheduler' is missing/);
    expect(at("8", "vae")[0]).toMatch(/node 44, which does not exist/);
    expect(at("6", "clip")[0]).toMatch(/output 7 of node 4, which has 3 output/);
    expect(at("9", "images")[0]).toMatch(/cannot connect LATENT/);
    expect(at("7")[0]).toMatch(/unknown node type 'Mystery'/);
    expect(problems).toHaveLength(8);
  });

  it("needs an output node and a non-empty graph", () => {
    const noOut = clone(sleepy);
    delete noOut["3"];
    expect(validatePrompt(noOut, info)).toEqual([{ node_id: "", message: expect.stringMatching(/no output node/) }]);
    expect(validatePrompt({}, info)[0].message).toMatch(/empty/);
  });

  it("types values: integers, booleans, text, and values where a link is needed", () => {
    const bad = clone(sleepy);
    bad["1"].inputs.width = 6.5;
    bad["2"].inputs.preview = "yes";
    bad["3"].inputs.filename_prefix = 3;
    bad["2"].inputs.image = 5;
    const msgs = validatePrompt(bad, info).map((p) => `${p.node_id}.${p.input}: ${p.message}`);
    expect(msgs).toEqual([
      "1.width: 'width' must be a whole number",
      "2.image: 'image' takes a link from a IMAGE output, not a value",
      "2.preview: 'preview' must be true or false",
      "3.filename_prefix: 'filename_prefix' must be text",
    ]);
  });
});
