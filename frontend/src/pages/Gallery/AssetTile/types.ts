import type { Asset } from "../../../lib/api/client";

/** Props of one gallery tile. */
export interface AssetTileProps {
  asset: Asset;
  /** Whether the tile takes tabindex 0 (the grid's roving focus). */
  tabbable: boolean;
  onopen: (asset: Asset) => void;
}
