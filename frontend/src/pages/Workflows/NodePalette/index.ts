export { default } from "./NodePalette.svelte";
export type { NodePaletteProps } from "./types";
