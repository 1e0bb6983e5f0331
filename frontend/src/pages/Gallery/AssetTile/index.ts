export { default } from "./AssetTile.svelte";
export type { AssetTileProps } from "./types";
