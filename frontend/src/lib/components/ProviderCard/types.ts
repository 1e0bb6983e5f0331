/** Props of {@link ProviderCard}. */
import type { Provider } from "../../api/client";
import type { ProviderConfig } from "../ProviderForm";

export interface ProviderCardProps {
  id: string;
  config: ProviderConfig;
  /** Its state from `GET /providers` (undefined while loading or when the server lists none). */
  status: Provider | undefined;
  isDefault: boolean;
  /** Place in the fallback chain (0 first), null when not in it. */
  chainPosition: number | null;
  busy: boolean;
  onedit: () => void;
  ontoggle: () => void;
  onremove: () => void;
}

/** One backend as `GET /providers` reports it. */
export interface BackendStat {
  backend?: string | null;
  in_flight?: number;
  limit?: number;
  healthy?: boolean;
  cooldown_remaining?: number | null;
  failures?: number;
  last_error?: string | null;
}
