export { default } from "./Generate.svelte";
