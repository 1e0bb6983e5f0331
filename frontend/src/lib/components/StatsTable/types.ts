/** Props of {@link StatsTable}. */
import type { Schemas } from "../../api/client";

/** One provider's analytics (`GET /stats` `providers[]`). */
export type ProviderStats = Schemas["ProviderStats"];
/** A provider's (or backend's) figures. */
export type UsageStats = Schemas["UsageStats"];

export interface StatsTableProps {
  providers: ProviderStats[];
  /** Display labels by provider id (the id is shown when missing). */
  labels: Record<string, string>;
}
