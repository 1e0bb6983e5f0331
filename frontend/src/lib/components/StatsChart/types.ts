/** Props of {@link StatsChart}. */
import type { Schemas } from "../../api/client";

/** One bucket of a provider's series (`GET /stats` `providers[].totals.series[]`). */
export type SeriesPoint = Schemas["SeriesPoint"];

export interface StatsChartProps {
  /** The provider's id or label, for the title and the text alternative. */
  name: string;
  series: SeriesPoint[];
  bucket: "hour" | "day";
}
