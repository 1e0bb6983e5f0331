/** One `progress` event of a model download (`POST /providers/{id}/models/download`). */
export interface DownloadProgressEvent {
  /** What is being fetched (a file name, or "Fetching N files"). */
  desc: string;
  /** "B": `done`/`total` are bytes; "it": files. */
  unit: string;
  done: number;
  /** null when the size is not known yet. */
  total: number | null;
}

export interface DownloadProgressProps {
  progress: DownloadProgressEvent;
  /** Accessible name of the bar. */
  label: string;
}
