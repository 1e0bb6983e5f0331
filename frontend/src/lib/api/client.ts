/**
 * The typed API client: openapi-fetch over the OpenAPI document the server publishes
 * (`frontend/openapi.json`, made by `image-studio openapi`; types in `schema.d.ts` by
 * `npm run gen:api`). Every route lives under {@link API_ROOT}; errors come back as
 * `{"error": {"type", "message", "field"}}` and are thrown as {@link ApiError}.
 */
import createClient, { type Middleware } from "openapi-fetch";
import type { components, paths } from "./schema";
import { authHeaders } from "./auth";

export const API_ROOT = "/api/v1/image-studio";

export type Schemas = components["schemas"];
export type Job = Schemas["JobOut"];
export type Asset = Schemas["AssetOut"];
export type AssetPage = Schemas["AssetPage"];
export type Provider = Schemas["ProviderOut"];
export type ProviderType = Schemas["ProviderTypeOut"];
export type Model = Schemas["ModelOut"];
export type Workflow = Schemas["WorkflowOut"];
export type Me = Schemas["MeOut"];
export type GenerationRequest = Schemas["GenerationRequest"];

/** An error answer of the API: HTTP `status`, the error `type`, a readable `message` and the
 * request `field` at fault when the server named one. */
export class ApiError extends Error {
  constructor(
    public status: number,
    public type: string,
    message: string,
    public field: string | null = null,
  ) {
    super(message);
    this.name = "ApiError";
  }

  /** "field: message" when a field is known, else the message. */
  get display(): string {
    return this.field && !this.message.startsWith(this.field) ? `${this.field}: ${this.message}` : this.message;
  }
}

/** Build an {@link ApiError} from a failed response's parsed body (any shape). */
export function toApiError(status: number, body: unknown): ApiError {
  const err = (body as { error?: { type?: string; message?: string; field?: string } } | null)?.error;
  if (err && typeof err === "object") {
    return new ApiError(status, err.type ?? "Error", err.message ?? `HTTP ${status}`, err.field ?? null);
  }
  const detail = (body as { detail?: unknown } | null)?.detail;
  return new ApiError(status, "Error", typeof detail === "string" ? detail : `HTTP ${status}`);
}

const auth: Middleware = {
  onRequest({ request }) {
    for (const [k, v] of Object.entries(authHeaders())) {
      if (!request.headers.has(k)) request.headers.set(k, v);
    }
    return request;
  },
};

/** The client; paths are written without {@link API_ROOT}, e.g. `api.GET("/api/v1/image-studio/jobs")`. */
export const api = createClient<paths>({ baseUrl: "" });
api.use(auth);

/** Unwrap an openapi-fetch result: the data, or throw {@link ApiError}. */
export async function unwrap<T>(
  call: Promise<{ data?: T; error?: unknown; response: Response }>,
): Promise<T> {
  const { data, error, response } = await call;
  if (!response.ok) throw toApiError(response.status, error ?? null);
  return data as T;
}

/** A plain fetch under the API root with auth; for routes whose body openapi-fetch does not
 * model (SSE streams, multipart). Throws {@link ApiError} on a non-2xx answer. */
export async function apiFetch(path: string, init: RequestInit = {}): Promise<Response> {
  const headers = new Headers(init.headers);
  for (const [k, v] of Object.entries(authHeaders())) if (!headers.has(k)) headers.set(k, v);
  const response = await fetch(`${API_ROOT}${path}`, { ...init, headers });
  if (!response.ok) {
    let body: unknown = null;
    try {
      body = await response.json();
    } catch {
      /* not JSON */
    }
    throw toApiError(response.status, body);
  }
  return response;
}

/** A server-relative URL under the API root (for links). */
export function apiUrl(path: string): string {
  return `${API_ROOT}${path}`;
}
