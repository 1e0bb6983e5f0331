// schema-form against the provider types' real settings schemas (dumped from GET /provider-types
// into fixtures/provider_types.json) and pydantic's ProviderConfig schema (with $ref/$defs).
import { describe, expect, it } from "vitest";
import dump from "./fixtures/provider_types.json";
import {
  cleanValues,
  describeSchema,
  JsonTextError,
  parseJsonText,
  parseNumberText,
  resolveRef,
  validateField,
  validateValues,
  type FieldDescriptor,
  type JsonSchema,
} from "../src/lib/core/schema-form";
import { serverFieldErrors, buildProviderConfig, backendDrafts } from "../src/lib/components/ProviderForm/provider-form";
import { moveItem } from "../src/lib/components/ChainEditor/chain";
import { formatBytes } from "../src/lib/components/DownloadProgress/format";

const types = dump.provider_types as unknown as { type: string; settings_schema: JsonSchema }[];
const schemaOf = (t: string): JsonSchema => types.find((x) => x.type === t)!.settings_schema;
const byKey = (fields: FieldDescriptor[], key: string): FieldDescriptor => {
  const f = fields.find((x) => x.key === key);
  if (!f) throw new Error(`no field ${key}`);
  return f;
};

describe("describeSchema on real provider schemas", () => {
  it("placeholder: number with bounds, nullable number, nullable enum, enum", () => {
    const fields = describeSchema(schemaOf("placeholder"));
    expect(fields.map((f) => f.key)).toEqual(expect.arrayContaining(["delay", "fail_rate", "fail_with", "retry_after", "style"]));
    const delay = byKey(fields, "delay");
    expect(delay).toMatchObject({ kind: "number", integer: false, min: 0, max: 3600, slider: true, nullable: false,
      placeholder: "0", description: "Seconds per image.", label: "Delay" });
    const rate = byKey(fields, "fail_rate");
    expect(rate).toMatchObject({ kind: "number", nullable: true, min: 0, max: 1, slider: true, label: "Fail rate" });
    expect(rate.sliderStep).toBeCloseTo(0.01);
    const failWith = byKey(fields, "fail_with");
    expect(failWith.kind).toBe("select");
    expect(failWith.nullable).toBe(true);
    expect(failWith.options.map((o) => o.value)).toContain("RateLimited");
    const retry = byKey(fields, "retry_after");
    expect(retry).toMatchObject({ kind: "number", min: 0, max: null, slider: false, nullable: true });
    expect(byKey(fields, "style")).toMatchObject({ kind: "select", default: "simple", placeholder: "simple" });
  });

  it("comfyui: exclusive bounds, booleans, a string-or-object union edited as JSON", () => {
    const fields = describeSchema(schemaOf("comfyui"));
    const poll = byKey(fields, "history_poll_interval");
    expect(poll).toMatchObject({ kind: "number", exclusiveMin: 0, min: null, max: 120, slider: true });
    expect(byKey(fields, "preview")).toMatchObject({ kind: "checkbox", default: true });
    const wf = byKey(fields, "workflow");
    expect(wf).toMatchObject({ kind: "json", acceptsString: true, placeholder: "weightfree" });
  });

  it("diffusers_local: pattern, minLength, integer, list of strings", () => {
    const fields = describeSchema(schemaOf("diffusers_local"));
    expect(byKey(fields, "device")).toMatchObject({ kind: "text", pattern: "^(auto|cpu|mps|cuda(:\\d+)?)$" });
    expect(byKey(fields, "model")).toMatchObject({ kind: "text", minLength: 1 });
    expect(byKey(fields, "default_steps")).toMatchObject({ kind: "number", integer: true, step: 1, min: 1, max: 200 });
    expect(byKey(fields, "model_dirs")).toMatchObject({ kind: "list" });
    expect(byKey(fields, "variant")).toMatchObject({ kind: "text", nullable: true });
  });

  it("openai: maxLength on a nullable string; replicate: free object edited as JSON", () => {
    expect(byKey(describeSchema(schemaOf("openai")), "user")).toMatchObject({ kind: "text", nullable: true, maxLength: 256 });
    expect(byKey(describeSchema(schemaOf("replicate")), "default_input")).toMatchObject({ kind: "json", acceptsString: false });
  });

  it("resolves $ref into $defs: ProviderConfig's backends and nested fields", () => {
    const schema = (dump.nested.ProviderConfig as unknown as JsonSchema);
    expect(resolveRef("#/$defs/BackendConfig", schema).title).toBe("BackendConfig");
    expect(() => resolveRef("#/$defs/Nope", schema)).toThrow(/unresolved/);
    const fields = describeSchema(schema);
    expect(byKey(fields, "type")).toMatchObject({ kind: "text", required: true });
    expect(byKey(fields, "credentials").kind).toBe("json");
    // an array of $ref objects is edited as JSON
    expect(byKey(fields, "backends").kind).toBe("json");
    // a $ref used directly becomes a nested fieldset
    const wrapped: JsonSchema = { ...schema, properties: { backend: { $ref: "#/$defs/BackendConfig" } } };
    const backend = byKey(describeSchema(wrapped), "backend");
    expect(backend.kind).toBe("object");
    expect(backend.fields.map((f) => f.key)).toEqual(["url", "name", "concurrency", "username", "password", "headers"]);
    expect(byKey(backend.fields, "url")).toMatchObject({ required: true, path: "backend.url" });
    expect(byKey(backend.fields, "password")).toMatchObject({ inputType: "password", nullable: true });
    expect(byKey(backend.fields, "concurrency")).toMatchObject({ integer: true, min: 1, max: 256, nullable: true });
  });
});

describe("validation", () => {
  const place = describeSchema(schemaOf("placeholder"));
  const dl = describeSchema(schemaOf("diffusers_local"));

  it("numbers: bounds, integers, not-a-number, exclusive bounds", () => {
    expect(validateField(byKey(place, "delay"), -1)).toBe("Must be at least 0.");
    expect(validateField(byKey(place, "delay"), 4000)).toBe("Must be at most 3600.");
    expect(validateField(byKey(place, "delay"), 1.5)).toBeNull();
    expect(validateField(byKey(place, "delay"), parseNumberText("abc"))).toBe("Enter a number.");
    expect(validateField(byKey(place, "delay"), parseNumberText(""))).toBeNull();
    expect(validateField(byKey(dl, "default_steps"), 2.5)).toBe("Enter a whole number.");
    const poll = byKey(describeSchema(schemaOf("comfyui")), "history_poll_interval");
    expect(validateField(poll, 0)).toBe("Must be more than 0.");
    expect(validateField(poll, 0.1)).toBeNull();
  });

  it("strings: pattern, minLength, maxLength; selects; lists", () => {
    expect(validateField(byKey(dl, "device"), "gpu")).toMatch(/expected format/);
    expect(validateField(byKey(dl, "device"), "cuda:1")).toBeNull();
    const user = byKey(describeSchema(schemaOf("openai")), "user");
    expect(validateField(user, "x".repeat(257))).toBe("At most 256 characters.");
    expect(validateField(byKey(place, "style"), "fancy")).toBe("Choose one of the options.");
    expect(validateField(byKey(place, "style"), "debug")).toBeNull();
    expect(validateField(byKey(dl, "model_dirs"), ["/models", ""])).toBe("Item 2 is empty.");
    expect(validateField(byKey(dl, "model_dirs"), ["/models"])).toBeNull();
  });

  it("JSON fields: bad JSON reported, plain strings accepted where the schema allows", () => {
    const wf = byKey(describeSchema(schemaOf("comfyui")), "workflow");
    expect(parseJsonText(wf, "txt2img")).toBe("txt2img");
    expect(parseJsonText(wf, '{"1": {"class_type": "X"}}')).toEqual({ "1": { class_type: "X" } });
    const input = byKey(describeSchema(schemaOf("replicate")), "default_input");
    const bad = parseJsonText(input, "{oops");
    expect(bad).toBeInstanceOf(JsonTextError);
    expect(validateField(input, bad)).toMatch(/^Not valid JSON/);
  });

  it("validateValues keys errors by path (nested included); required fields", () => {
    const schema = (dump.nested.ProviderConfig as unknown as JsonSchema);
    const wrapped: JsonSchema = { ...schema, required: ["backend"], properties: { backend: { $ref: "#/$defs/BackendConfig" } } };
    const fields = describeSchema(wrapped);
    expect(validateValues(fields, { backend: { url: "", concurrency: 0 } })).toEqual({
      "backend.url": "Required.",
      "backend.concurrency": "Must be at least 1.",
    });
    expect(validateValues(place, { delay: -1, style: "simple" })).toEqual({ delay: "Must be at least 0." });
    expect(validateValues(place, {})).toEqual({});
  });

  it("cleanValues drops unset entries, keeps unknown keys and explicit nulls of nullable fields", () => {
    expect(cleanValues(place, { delay: undefined, fail_rate: null, style: "", extra: 1, retry_after: 2 }))
      .toEqual({ fail_rate: null, extra: 1, retry_after: 2 });
    expect(cleanValues(place, { delay: 0.5 })).toEqual({ delay: 0.5 });
  });
});

// The page helpers built on it: server 422 fields mapped to the provider form, the chain move.

describe("provider form helpers", () => {
  it("maps a server field to the settings form, another field, or the general error", () => {
    expect(serverFieldErrors("p", "providers.p.settings.delay", "too small")).toEqual({ settings: { delay: "too small" }, fields: {}, general: null });
    expect(serverFieldErrors("p", "providers.p.backends.0.url", "bad").fields).toEqual({ "backends.0.url": "bad" });
    expect(serverFieldErrors("p", "fallback_chain.1", "unknown").general).toBe("fallback_chain.1: unknown");
    expect(serverFieldErrors("p", null, "oops").general).toBe("oops");
  });

  it("builds the config: empty secrets keep the masked value, typed ones replace it, settings cleaned", () => {
    const drafts = backendDrafts([{ url: "http://a:1", password: "••••abcd", headers: { "X-Token": "••••wxyz" } }]);
    drafts.push({ url: " http://b:2 ", name: "", concurrency: "", username: "u", password: "pw", original: null });
    const cfg = buildProviderConfig({
      type: "placeholder", schema: schemaOf("placeholder"), enabled: true, label: " ", concurrency: 2, timeout: 30,
      fallbackOnContentRejected: false, settings: { delay: 0.5, style: undefined, fail_rate: "" },
      credentials: { api_key: "", other: "new-secret" }, originalCredentials: { api_key: "••••1234" }, backends: drafts,
    });
    expect(cfg.credentials).toEqual({ api_key: "••••1234", other: "new-secret" });
    expect(cfg.backends).toEqual([
      { url: "http://a:1", password: "••••abcd", headers: { "X-Token": "••••wxyz" } },
      { url: "http://b:2", username: "u", password: "pw" },
    ]);
    expect(cfg.settings).toEqual({ delay: 0.5 });
    expect(cfg.label).toBeNull();
  });

  it("moves chain items and formats byte counts", () => {
    expect(moveItem(["a", "b", "c"], 2, 0)).toEqual(["c", "a", "b"]);
    expect(moveItem(["a", "b", "c"], 0, 9)).toEqual(["b", "c", "a"]);
    expect(formatBytes(0)).toBe("0 B");
    expect(formatBytes(1536)).toBe("1.50 KB");
    expect(formatBytes(5_000_000)).toBe("4.77 MB");
    expect(formatBytes(-1)).toBe("—");
  });
});
