export { default } from "./QueuePanel.svelte";
export { JobQueue, itemOf } from "./queue.svelte";
export type { QueueItem, JobEvent } from "./types";
