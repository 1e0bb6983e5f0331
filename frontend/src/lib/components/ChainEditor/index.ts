export { default } from "./ChainEditor.svelte";
export type * from "./types";
export { moveItem } from "./chain";
