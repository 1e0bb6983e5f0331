export { default } from "./Gallery.svelte";
