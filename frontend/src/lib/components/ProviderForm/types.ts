/** The provider config as `GET /config` returns it (secrets masked) and `PUT /config` takes it. */
import type { ProviderType } from "../../api/client";

export interface BackendConfig {
  url: string;
  name?: string | null;
  concurrency?: number | null;
  username?: string | null;
  /** Masked ("••••abcd") when read; send it back unchanged to keep it, or the new secret. */
  password?: string | null;
  headers?: Record<string, string>;
}

export interface ProviderConfig {
  type: string;
  enabled: boolean;
  /** Masked secrets by name; a masked value sent back keeps the stored secret. */
  credentials: Record<string, string>;
  settings: Record<string, unknown>;
  backends: BackendConfig[];
  concurrency: number;
  /** Seconds per attempt. */
  timeout: number;
  label: string | null;
  fallback_on_content_rejected: boolean;
}

export interface StudioConfig {
  default_provider: string | null;
  fallback_chain: string[];
  providers: Record<string, ProviderConfig>;
  api_keys: unknown[];
  openai_facade: unknown;
  [key: string]: unknown;
}

export interface ProviderFormProps {
  /** The provider's id; null to add a new provider (the form asks for type and id). */
  id: string | null;
  /** The provider's current config (null when adding). */
  initial: ProviderConfig | null;
  types: ProviderType[];
  /** Ids already taken (a new provider must not reuse one). */
  takenIds: string[];
  /** Save: resolves when stored; throws ApiError (a 422 names the field at fault). */
  onsave: (id: string, config: ProviderConfig) => Promise<void>;
  oncancel: () => void;
}
