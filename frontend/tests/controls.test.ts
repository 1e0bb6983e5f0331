import { describe, expect, it } from "vitest";
import {
  AUTOMATIC_CAPS,
  aspectOf,
  buildRequest,
  checkControl,
  coerce,
  controlsFor,
  defaultForm,
  errorFor,
  formFromAsset,
  niceStep,
  presetSize,
  readCapabilities,
  schemaControl,
  serverField,
  withSchema,
  workflowControls,
  checkSize,
  readSizeRule,
  rulePresets,
  sizeRuleFor,
  type Capabilities,
  type GenerateForm,
} from "../src/lib/core/controls";

const placeholderCaps = readCapabilities({
  media: ["image"], txt2img: true, img2img: true, inpaint: true, max_width: 4096, max_height: 4096, max_n: 16,
  negative_prompt: true, seed: true,
}) as Capabilities;

const comfyCaps = readCapabilities({
  media: ["image", "video"], txt2img: true, img2img: true, inpaint: false, upscale: true, video: true,
  max_width: 8192, max_height: 8192, max_n: 64, negative_prompt: true, seed: true, loras: true, vae: true, hires: true,
}) as Capabilities;

function form(over: Partial<GenerateForm> = {}): GenerateForm {
  return { ...defaultForm(), prompt: "a red fox", ...over };
}

describe("capabilities -> controls", () => {
  it("reads capabilities with the backend's defaults for missing keys", () => {
    const caps = readCapabilities({ max_width: 1536 })!;
    expect(caps.max_width).toBe(1536);
    expect(caps.max_height).toBe(2048);
    expect(caps.max_n).toBe(4);
    expect(caps.negative_prompt).toBe(true);
    expect(caps.inpaint).toBe(false);
    expect(readCapabilities(null)).toBeNull();
  });

  it("hides what a provider cannot do", () => {
    const caps = readCapabilities({ negative_prompt: false, seed: false, max_n: 1 })!;
    const c = controlsFor(caps, { samplers: [] });
    expect(c.negativePrompt).toBe(false);
    expect(c.seed).toBe(false);
    expect(c.sampler).toBe(false);
    expect(c.loras).toBe(false);
    expect(c.hires).toBe(false);
    expect(c.initImage).toBe(false);
    expect(c.mask).toBe(false);
    expect(c.maxN).toBe(1);
  });

  it("shows the add-ons a ComfyUI provider offers, with names from its options", () => {
    const c = controlsFor(comfyCaps, {
      samplers: ["euler", "dpmpp_2m"], schedulers: ["normal", "karras"], loras: ["detail.safetensors"],
      vaes: ["sdxl_vae.safetensors"], upscalers: ["4x-UltraSharp.pth"], latent_upscale_methods: ["nearest-exact"],
    });
    expect(c.sampler && c.scheduler && c.loras && c.vae && c.hires && c.upscale && c.initImage).toBe(true);
    expect(c.mask).toBe(false);
    expect(c.samplers).toEqual(["euler", "dpmpp_2m"]);
    expect(c.loraNames).toEqual(["detail.safetensors"]);
    expect(c.upscalers).toEqual(["4x-UltraSharp.pth", "nearest-exact"]);
    expect(c.media).toEqual(["image", "video"]);
    expect(c.maxWidth).toBe(8192);
  });

  it("narrows the sampler controls to the slots a workflow has", () => {
    const c = controlsFor(comfyCaps, { samplers: ["euler"], schedulers: ["normal"] }, ["width", "height", "color"]);
    expect(c.steps).toBe(false);
    expect(c.cfgScale).toBe(false);
    expect(c.sampler).toBe(false);
    expect(c.seed).toBe(false);
    expect(c.negativePrompt).toBe(false);
    expect(c.initImage).toBe(false);
    expect(controlsFor(comfyCaps, null, ["init_image", "scale"]).initImage).toBe(true);
    const all = controlsFor(comfyCaps, { samplers: ["euler"] }, ["seed", "steps", "cfg", "sampler", "negative_prompt"]);
    expect(all.steps && all.cfgScale && all.sampler && all.seed && all.negativePrompt).toBe(true);
  });
});

describe("JSON Schema property -> control", () => {
  it("bounded numbers become sliders with the schema's step", () => {
    const c = schemaControl("denoise", { type: "number", default: 0.6, minimum: 0, maximum: 1, multipleOf: 0.05, title: "Denoise" });
    expect(c).toMatchObject({ kind: "slider", min: 0, max: 1, step: 0.05, label: "Denoise", valueType: "number", default: 0.6 });
  });

  it("integers without bounds become number inputs stepping by 1; labels come from the name", () => {
    const c = schemaControl("color", { type: "integer", default: 16711680 });
    expect(c).toMatchObject({ kind: "number", step: 1, label: "Color", valueType: "integer" });
    expect(c.min).toBeUndefined();
  });

  it("enums become selects, booleans toggles, strings text; the type is guessed from the default", () => {
    expect(schemaControl("method", { type: "string", enum: ["lanczos", "bicubic"], default: "lanczos" })).toMatchObject({
      kind: "select", options: [{ value: "lanczos", label: "lanczos" }, { value: "bicubic", label: "bicubic" }],
    });
    expect(schemaControl("tile", { default: true })).toMatchObject({ kind: "toggle", valueType: "boolean" });
    expect(schemaControl("suffix", { type: "string", default: "x", description: "appended" })).toMatchObject({
      kind: "text", description: "appended",
    });
    expect(schemaControl("fps", { default: 12.5 }).valueType).toBe("number");
    expect(schemaControl("frames", { type: ["integer", "null"], minimum: 1, maximum: 120 })).toMatchObject({
      kind: "slider", step: 1, valueType: "integer",
    });
  });

  it("a slider without a step gets about a hundred positions", () => {
    expect(niceStep(0, 1)).toBeCloseTo(0.01);
    expect(niceStep(1, 30)).toBeCloseTo(0.5);
    expect(niceStep(0, 1000)).toBe(10);
    expect(schemaControl("scale", { type: "number", minimum: 1, maximum: 4 }).step).toBeCloseTo(0.05);
  });

  it("a workflow's controls leave out the standard slots", () => {
    const schema = {
      properties: {
        width: { type: "integer", default: 512 }, height: { type: "integer", default: 512 },
        batch_size: { type: "integer", default: 1 }, color: { type: "integer", default: 0 },
        prompt: { type: "string", default: "" }, fps: { type: "number", default: 8, minimum: 1, maximum: 60 },
      },
    };
    expect(workflowControls(schema).map((c) => c.name)).toEqual(["color", "fps"]);
    expect(workflowControls(null)).toEqual([]);
  });

  it("coerces and checks values", () => {
    const frames = schemaControl("frames", { type: "integer", minimum: 1, maximum: 120 });
    expect(coerce(frames, "12")).toBe(12);
    expect(coerce(frames, "")).toBeNull();
    expect(coerce(frames, "abc")).toBeNull();
    expect(checkControl(frames, 0)).toBe("must be at least 1");
    expect(checkControl(frames, 121)).toBe("must be at most 120");
    expect(checkControl(frames, 60)).toBeNull();
    const method = schemaControl("m", { enum: ["a", "b"] });
    expect(checkControl(method, "c")).toBe("must be one of a, b");
    expect(coerce(schemaControl("t", { type: "boolean" }), "true")).toBe(true);
  });
});

describe("size presets", () => {
  it("keeps the area of base² in multiples of 64", () => {
    expect(presetSize({ w: 1, h: 1 }, 1024, 4096, 4096)).toEqual({ width: 1024, height: 1024 });
    expect(presetSize({ w: 16, h: 9 }, 1024, 4096, 4096)).toEqual({ width: 1344, height: 768 });
    expect(presetSize({ w: 9, h: 16 }, 1024, 4096, 4096)).toEqual({ width: 768, height: 1344 });
    expect(presetSize({ w: 4, h: 3 }, 1024, 4096, 4096)).toEqual({ width: 1152, height: 896 });
    expect(presetSize({ w: 3, h: 2 }, 512, 4096, 4096, 8)).toEqual({ width: 624, height: 416 });
  });

  it("scales down to the provider's maximum, keeping the ratio", () => {
    const s = presetSize({ w: 16, h: 9 }, 2048, 1024, 1024);
    expect(s.width).toBeLessThanOrEqual(1024);
    expect(s.width).toBe(1024);
    expect(s.height).toBe(576);
    const t = presetSize({ w: 1, h: 1 }, 2048, 1000, 1000);
    expect(t).toEqual({ width: 960, height: 960 });
  });

  it("names the ratio of a size", () => {
    expect(aspectOf(1344, 768)).toBe("16:9");
    expect(aspectOf(1024, 1024)).toBe("1:1");
    expect(aspectOf(1000, 300)).toBeNull();
  });
});

describe("size rules", () => {
  const fixed = readSizeRule({ kind: "fixed", sizes: ["1024x1024", "1792x1024", "1024x1792"], auto: false })!;
  const ratios = readSizeRule({ kind: "aspect_ratios", ratios: [{ ratio: "16:9", width: 1344, height: 768, tier: "1K" }, { ratio: "1:1", width: 1024, height: 1024 }] })!;
  const multiple = readSizeRule({ kind: "multiple_of", multiple: 64, min: 256, max: 2048, max_pixels: 2_100_000, max_ratio: 4, buckets: ["1024x1024", "1344x768"] })!;

  it("reads rules and picks a model's own rule by id or prefix", () => {
    expect(readSizeRule({ kind: "other" })).toBeNull();
    const caps = readCapabilities({ sizes: { kind: "fixed", sizes: ["512x512"] }, model_sizes: { "dall-e-3": { kind: "fixed", sizes: ["1024x1024"] } } })!;
    expect(sizeRuleFor(caps, null)?.sizes).toEqual(["512x512"]);
    expect(sizeRuleFor(caps, "dall-e-3-hd")?.sizes).toEqual(["1024x1024"]);
    expect(controlsFor(caps, null, null, "dall-e-3").sizeRule?.sizes).toEqual(["1024x1024"]);
    expect(controlsFor(AUTOMATIC_CAPS).sizeRule).toBeNull();
  });

  it("offers the rule's sizes as presets", () => {
    expect(rulePresets(fixed).map((p) => p.label)).toEqual(["1024×1024 (1:1)", "1792×1024 (16:9)", "1024×1792 (9:16)"]);
    expect(rulePresets(ratios)[0]).toEqual({ label: "16:9 · 1K — 1344×768", width: 1344, height: 768 });
    expect(rulePresets(multiple).map((p) => [p.width, p.height])).toEqual([[1024, 1024], [1344, 768]]);
    expect(rulePresets(null)).toEqual([]);
  });

  it("checks a size against the rule", () => {
    expect(checkSize(fixed, 1792, 1024)).toBeNull();
    expect(checkSize(fixed, 1000, 1000)).toContain("not a size this model takes (1024×1024, 1792×1024, 1024×1792)");
    expect(checkSize(ratios, 1344, 768)).toBeNull();
    expect(checkSize(multiple, 1000, 1024)).toBe("width and height must be multiples of 64");
    expect(checkSize(multiple, 192, 256)).toBe("each side must be at least 256");
    expect(checkSize(multiple, 2048, 2048)).toContain("over 2,100,000 pixels");
    expect(checkSize(multiple, 2048, 448)).toBe("the long side may be at most 4 times the short one");
    expect(checkSize(null, 1, 1)).toBeNull();
  });

  it("refuses a size off the rule unless the studio may snap it", () => {
    const caps = { ...placeholderCaps, sizes: fixed };
    const c = controlsFor(caps);
    expect(buildRequest(form({ width: 1000, height: 1000 }), caps, c).errors.width).toContain("pick a preset");
    const snapped = buildRequest(form({ width: 1000, height: 1000, sizePolicy: "nearest" }), caps, c);
    expect(snapped.errors).toEqual({});
    expect(snapped.request.size_policy).toBe("nearest");
  });

  it("checks the provider's prompt length", () => {
    const caps = { ...placeholderCaps, maxPromptChars: 10 };
    expect(buildRequest(form({ prompt: "x".repeat(11) }), caps, controlsFor(caps), [], "DALL-E").errors.prompt).toBe(
      "DALL-E takes prompts of at most 10 characters (11 given)",
    );
  });
});

describe("request building and validation", () => {
  const controls = controlsFor(placeholderCaps, { samplers: ["placeholder"], schedulers: [] });

  it("builds a txt2img body with only what is set", () => {
    const { request, batch, errors } = buildRequest(
      form({ provider: "placeholder", steps: 20, cfgScale: 7, sampler: "placeholder", seed: 42, negativePrompt: "blur" }),
      placeholderCaps, controls,
    );
    expect(errors).toEqual({});
    expect(batch).toBeNull();
    expect(request).toEqual({
      prompt: "a red fox", width: 1024, height: 1024, n: 1, size_policy: "exact", media: "image", provider: "placeholder",
      negative_prompt: "blur", steps: 20, cfg_scale: 7, sampler: "placeholder", seed: 42,
    });
  });

  it("a width over the provider's maximum is an error naming the field", () => {
    const { errors } = buildRequest(form({ width: 5000 }), placeholderCaps, controls, [], "Placeholder");
    expect(errors.width).toBe("Width 5000 is over Placeholder's maximum 4096");
    expect(errors.height).toBeUndefined();
  });

  it("checks prompt, n, steps, seed and sizes", () => {
    const { errors } = buildRequest(
      form({ prompt: "  ", n: 17, steps: 0, seed: 1.5, height: null, cfgScale: 101 }), placeholderCaps, controls,
    );
    expect(Object.keys(errors).sort()).toEqual(["cfg_scale", "height", "n", "prompt", "seed", "steps"]);
    expect(errors.n).toContain("16");
  });

  it("sends init image, mask and strength; refuses a mask the provider cannot paint", () => {
    const f = form({ initImage: "data:image/png;base64,AAAA", mask: "data:image/png;base64,BBBB", strength: 0.6 });
    const ok = buildRequest(f, placeholderCaps, controls);
    expect(ok.errors).toEqual({});
    expect(ok.request).toMatchObject({ init_image: f.initImage, mask: f.mask, denoising_strength: 0.6 });
    const noInpaint = { ...placeholderCaps, inpaint: false };
    expect(buildRequest(f, noInpaint, controlsFor(noInpaint), [], "X").errors.mask).toBe("X does not do inpainting");
    expect(buildRequest(form({ mask: "m" }), placeholderCaps, controls).errors.mask).toBe("A mask needs an init image");
  });

  it("adds LoRAs, VAE, hires and workflow params for a ComfyUI provider, checking each", () => {
    const c = controlsFor(comfyCaps, { samplers: ["euler"], loras: ["a.safetensors"], vaes: ["v.safetensors"] });
    const params = workflowControls({ properties: { color: { type: "integer", default: 0 }, frames: { type: "integer", minimum: 1, maximum: 8 } } });
    const f = form({
      provider: "comfy", workflow: "weightfree", loras: [{ name: "a.safetensors", weight: 0.8 }], vae: "v.safetensors",
      hires: { enabled: true, scale: 1.5, steps: 10, denoise: 0.4, upscaler: null }, params: { color: "255", frames: 4 },
    });
    const { request, errors } = buildRequest(f, comfyCaps, c, params);
    expect(errors).toEqual({});
    expect(request).toMatchObject({
      workflow: "weightfree", loras: [{ name: "a.safetensors", weight: 0.8 }], vae: "v.safetensors",
      hires: { scale: 1.5, steps: 10, denoising_strength: 0.4, upscaler: null }, params: { color: 255, frames: 4 },
    });
    const bad = buildRequest(
      { ...f, loras: [{ name: "", weight: 0.5 }], params: { frames: 9 }, hires: { ...f.hires, scale: 6 } }, comfyCaps, c, params,
    );
    expect(bad.errors["loras.0.name"]).toBe("Choose a LoRA");
    expect(bad.errors["params.frames"]).toBe("Frames must be at most 8");
    expect(bad.errors["hires.scale"]).toBeDefined();
  });

  it("a workflow's metadata narrows the standard controls and is checked", () => {
    const steps = { name: "steps", label: "Steps", kind: "slider" as const, valueType: "integer" as const, default: null, min: 1, max: 150, step: 1 };
    const narrowed = withSchema(steps, { type: "integer", default: 20, minimum: 1, maximum: 50, multipleOf: 1, title: "Sampling steps" });
    expect(narrowed).toMatchObject({ label: "Sampling steps", min: 1, max: 50, default: 20 });
    expect(withSchema(steps, undefined)).toBe(steps);
    const c = controlsFor(comfyCaps, null, ["steps"]);
    const bad = buildRequest(form({ steps: 80 }), comfyCaps, c, [], "ComfyUI", undefined, { steps: narrowed });
    expect(bad.errors.steps).toBe("Sampling steps must be at most 50");
    expect(buildRequest(form({ steps: 30 }), comfyCaps, c, [], "ComfyUI", undefined, { steps: narrowed }).errors).toEqual({});
  });

  it("a batch count makes a batch over seeds (stepping by n from a fixed seed), or one job per prompt line", () => {
    const fixed = buildRequest(form({ batchCount: 3, n: 2, seed: 100 }), placeholderCaps, controls);
    expect(fixed.batch?.grid).toEqual({ seed: [100, 102, 104] });
    let next = 7;
    const random = buildRequest(form({ batchCount: 2, seed: -1 }), placeholderCaps, controls, [], "p", () => next++);
    expect(random.batch?.grid).toEqual({ seed: [7, 8] });
    const lines = buildRequest(form({ prompt: "a cat\n\na dog\n", promptPerLine: true }), placeholderCaps, controls);
    expect(lines.batch).toEqual({ base: expect.objectContaining({ prompt: "a cat" }), prompts: ["a cat", "a dog"], grid: {} });
    const tooMany = buildRequest(form({ batchCount: 101 }), placeholderCaps, controls);
    expect(tooMany.errors.batch).toBeDefined();
  });

  it("leaves sizes and counts to the server in automatic mode", () => {
    const c = controlsFor(AUTOMATIC_CAPS);
    expect(c.checkLimits).toBe(false);
    expect(buildRequest(form({ width: 20000, n: 99 }), AUTOMATIC_CAPS, c).errors).toEqual({});
    expect(buildRequest(form({ width: 4 }), AUTOMATIC_CAPS, c).errors.width).toBe("Width must be at least 8");
    expect(controlsFor(placeholderCaps).checkLimits).toBe(true);
  });
});

describe("errors per field and reuse", () => {
  it("finds a control's error by its key, a key under it, or above it", () => {
    const errors = { "hires.scale": "too big", "loras.0": "bad row", width: "too wide" };
    expect(errorFor(errors, "width")).toBe("too wide");
    expect(errorFor(errors, "hires")).toBe("too big");
    expect(errorFor(errors, "loras.0.name")).toBe("bad row");
    expect(errorFor(errors, "height")).toBeNull();
  });

  it("maps server fields to form keys", () => {
    expect(serverField("body.width")).toBe("width");
    expect(serverField("base.cfg")).toBe("cfg_scale");
    expect(serverField("requests.2.seed")).toBe("seed");
    expect(serverField(null)).toBeNull();
  });

  it("fills the form from an asset's parameters", () => {
    const f = formFromAsset({
      prompt: "a fox", negative_prompt: null, seed: 123, width: 640, height: 448, provider: "placeholder",
      model: "placeholder-simple",
      parameters: { steps: 25, cfg_scale: 6.5, sampler: "euler", loras: [{ name: "x", weight: 0.5 }, { bad: 1 }],
        hires: { scale: 1.5, denoising_strength: 0.3 }, workflow: "weightfree", params: { color: 5 } },
    });
    expect(f).toMatchObject({
      prompt: "a fox", negativePrompt: "", seed: 123, width: 640, height: 448, provider: "placeholder",
      model: "placeholder-simple", steps: 25, cfgScale: 6.5, sampler: "euler", loras: [{ name: "x", weight: 0.5 }],
      hires: { enabled: true, scale: 1.5, steps: null, denoise: 0.3, upscaler: null }, workflow: "weightfree",
      params: { color: 5 },
    });
  });
});

describe("prompt hints and queue notes", async () => {
  const { hintSummary } = await import("../src/lib/components/PromptHints/hints");
  const { gridLabelOf, promptNoteOf } = await import("../src/lib/components/QueuePanel/notes");
  const check = {
    action: "none", hard_limit: 10000, soft_limit: 3000, keywords: {}, length: 62, provider: "comfy",
    provider_limit: null, token_limit: 75, tokens: 18, warnings: [],
  };

  it("sums up the length, the CLIP estimate and what the server will do", () => {
    expect(hintSummary(check)).toEqual({ text: "62 characters · ~18 / 75 CLIP tokens", level: "ok" });
    expect(hintSummary({ ...check, tokens: 92 }).level).toBe("warn");
    expect(hintSummary({ ...check, token_limit: null, length: 3412, action: "optimize" })).toEqual({
      text: "3,412 characters: an LLM will shorten it before it runs", level: "warn",
    });
    expect(hintSummary({ ...check, token_limit: null, length: 10001, action: "refuse" }).text).toBe(
      "10,001 characters: over the 10,000-character limit, the studio will refuse it",
    );
  });

  it("says when a job's prompt was shortened, or why not", () => {
    expect(promptNoteOf({ changed: true, original_length: 3500, length: 1200, seconds: 2.345 })).toBe(
      "prompt shortened from 3,500 to 1,200 characters in 2.3 s",
    );
    expect(promptNoteOf({ changed: false, warning: "the LLM did not answer" })).toBe("prompt not shortened: the LLM did not answer");
    expect(promptNoteOf({ changed: false, warning: null })).toBeNull();
    expect(promptNoteOf(null)).toBeNull();
  });

  it("labels a batch job with its grid values", () => {
    expect(gridLabelOf({ prompt: "x", seed: 11, steps: 20, sampler: "euler" })).toBe("seed 11 · steps 20 · sampler euler");
    expect(gridLabelOf({ prompt: "x", seed: -1 })).toBeNull();
  });
});
