export { default } from "./QueuePanel.svelte";
export { JobQueue, itemOf } from "./queue.svelte";
export { gridLabelOf, promptNoteOf } from "./notes";
export type { QueueItem, JobEvent, BatchInfo, BatchEvent } from "./types";
