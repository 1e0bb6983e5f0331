export { default } from "./VirtualGrid.svelte";
export { columnsFor, gridWindow } from "./window";
export type { GridWindow, GridWindowInput } from "./types";
