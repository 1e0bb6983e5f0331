export { default } from "./MaskPainter.svelte";
export { maskToPng } from "./mask";
export type { BrushMode } from "./types";
