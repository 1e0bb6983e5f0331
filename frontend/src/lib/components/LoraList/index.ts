export { default } from "./LoraList.svelte";
export type { LoraRow } from "./types";
