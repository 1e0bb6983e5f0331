export { default } from "./InitImage.svelte";
export { readImageFile } from "./read";
export type { InitImageValue } from "./types";
