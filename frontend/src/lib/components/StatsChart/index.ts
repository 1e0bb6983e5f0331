export { default } from "./StatsChart.svelte";
export type * from "./types";
