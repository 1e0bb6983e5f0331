export { default } from "./ImportCard.svelte";
export type * from "./types";
