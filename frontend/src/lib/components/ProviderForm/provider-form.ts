/** Pure helpers of the provider form: labels, mapping a server 422 `field` to a form field,
 * and building the config to send from what was typed (secrets left empty are kept). */
import { cleanValues, describeSchema, humanize, type JsonSchema } from "../../core/schema-form";
import type { BackendConfig, ProviderConfig } from "./types";

/** "api_key" -> "API key", "hf_token" -> "HF token". */
export function credentialLabel(name: string): string {
  return humanize(name).replace(/\b(api|hf|url|id)\b/gi, (w) => w.toUpperCase());
}

/** Where a server error lands in the provider form. */
export interface FieldErrors {
  /** Errors of the settings form, by path relative to `settings`. */
  settings: Record<string, string>;
  /** Other fields: `id`, `label`, `timeout`, `concurrency`, `credentials.api_key`, `backends.0.url` ... */
  fields: Record<string, string>;
  /** An error that names no field of this form. */
  general: string | null;
}

/**
 * Split a server error (`field` like `providers.<id>.settings.delay`) into the form's fields.
 * A field outside this provider (or none) becomes the general error.
 */
export function serverFieldErrors(id: string, field: string | null, message: string): FieldErrors {
  const out: FieldErrors = { settings: {}, fields: {}, general: null };
  const prefix = `providers.${id}.`;
  if (field && field.startsWith(prefix)) {
    const rest = field.slice(prefix.length);
    if (rest.startsWith("settings.")) out.settings[rest.slice("settings.".length)] = message;
    else out.fields[rest] = message;
  } else if (field === `providers.${id}` || field === "providers") {
    out.general = message;
  } else {
    out.general = field ? `${field}: ${message}` : message;
  }
  return out;
}

/** The trimmed text of an input's bound value (number inputs bind numbers, or null when empty). */
export function textOf(value: unknown): string {
  return value === null || value === undefined ? "" : String(value).trim();
}

/** What the form holds for one backend while editing (`password` "" = keep the stored one). */
export interface BackendDraft {
  url: string;
  name: string;
  concurrency: string;
  username: string;
  password: string;
  /** The backend as read (masked password, headers), null for a new row. */
  original: BackendConfig | null;
}

/** The form's drafts of `backends`. */
export function backendDrafts(backends: BackendConfig[]): BackendDraft[] {
  return backends.map((b) => ({
    url: b.url, name: b.name ?? "", concurrency: b.concurrency == null ? "" : String(b.concurrency),
    username: b.username ?? "", password: "", original: b,
  }));
}

/**
 * The provider config to send: `settings` cleaned by the type's schema, credentials typed
 * replace the stored ones (empty keeps the masked value, which the server resolves), backend
 * passwords likewise, headers kept as they were.
 */
export function buildProviderConfig(input: {
  type: string;
  schema: JsonSchema;
  enabled: boolean;
  label: string;
  concurrency: number;
  timeout: number;
  fallbackOnContentRejected: boolean;
  settings: Record<string, unknown>;
  credentials: Record<string, string>;
  originalCredentials: Record<string, string>;
  backends: BackendDraft[];
}): ProviderConfig {
  const credentials: Record<string, string> = { ...input.originalCredentials };
  for (const [k, v] of Object.entries(input.credentials)) if (v !== "") credentials[k] = v;
  const backends: BackendConfig[] = input.backends.map((b) => {
    const out: BackendConfig = { url: b.url.trim() };
    if (b.name.trim()) out.name = b.name.trim();
    if (textOf(b.concurrency) !== "") out.concurrency = Number(b.concurrency);
    if (b.username.trim()) out.username = b.username.trim();
    if (b.password !== "") out.password = b.password;
    else if (b.original?.password && b.original.url === out.url) out.password = b.original.password;
    if (b.original?.headers && Object.keys(b.original.headers).length) out.headers = b.original.headers;
    return out;
  });
  return {
    type: input.type,
    enabled: input.enabled,
    credentials,
    settings: cleanValues(describeSchema(input.schema), input.settings),
    backends,
    concurrency: input.concurrency,
    timeout: input.timeout,
    label: input.label.trim() || null,
    fallback_on_content_rejected: input.fallbackOnContentRejected,
  };
}
