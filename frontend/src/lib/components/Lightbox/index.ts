export { default } from "./Lightbox.svelte";
export { paramEntries, copyText } from "./params";
export type { LightboxProps, ParamEntry } from "./types";
