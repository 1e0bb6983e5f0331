export { default } from "./SeedInput.svelte";
export type { Seed } from "./types";
