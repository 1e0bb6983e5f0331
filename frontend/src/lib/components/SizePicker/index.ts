export { default } from "./SizePicker.svelte";
export type { AspectPreset } from "./types";
