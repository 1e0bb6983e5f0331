export { default } from "./GridBuilder.svelte";
