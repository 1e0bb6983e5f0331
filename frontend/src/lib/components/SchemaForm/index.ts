export { default } from "./SchemaForm.svelte";
export type * from "./types";
