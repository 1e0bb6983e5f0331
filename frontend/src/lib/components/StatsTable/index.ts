export { default } from "./StatsTable.svelte";
export type * from "./types";
