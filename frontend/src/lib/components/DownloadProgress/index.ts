export { default } from "./DownloadProgress.svelte";
export type * from "./types";
export { formatBytes } from "./format";
