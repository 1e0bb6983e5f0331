export { default } from "./ProviderCard.svelte";
export type * from "./types";
