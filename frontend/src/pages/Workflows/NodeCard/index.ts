export { default } from "./NodeCard.svelte";
export type { NodeCardProps } from "./types";
