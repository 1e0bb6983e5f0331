export { default } from "./GraphEditor.svelte";
export * from "./types";
