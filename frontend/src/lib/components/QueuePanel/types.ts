import type { Asset, Job } from "../../api/client";

/** One job in the queue panel. `progress` 0..1; `position` 0-based while queued; `step` the
 * current sampler step; `preview` a data: URL of the latest preview image. */
export interface QueueItem {
  id: string;
  prompt: string;
  status: Job["status"];
  position: number | null;
  progress: number;
  step: { value: number; max: number } | null;
  preview: string | null;
  provider: string | null;
  backend: string | null;
  note: string | null;
  error: string | null;
  assets: Asset[];
  assetIds: string[];
  batchId: string | null;
  /** "prompt shortened from N to M characters" (or the optimizer's warning), from `prompt_info`. */
  promptNote: string | null;
  /** A batch job's grid values ("seed 11 · steps 20"). */
  gridLabel: string | null;
  /** When the job was created (ISO 8601, UTC). */
  createdAt: string;
}

/** A job event as `GET /jobs/{id}/events` sends it (backend ProgressEvent, JSON). */
export interface JobEvent {
  job_id: string;
  type: string;
  progress?: number;
  value?: number;
  max?: number;
  position?: number;
  preview?: string;
  preview_mime?: string;
  provider?: string;
  backend?: string;
  message?: string;
  data?: Record<string, unknown>;
}

/** A batch the queue follows (`GET /batches/{id}` and its events): jobs per status, overall
 * progress 0..1 (ended jobs count as 1), `done` when every job ended. */
export interface BatchInfo {
  id: string;
  total: number;
  counts: Record<string, number>;
  progress: number;
  done: boolean;
  /** Why live updates stopped, if they did. */
  error: string | null;
}

/** A message of `GET /batches/{id}/events` (backend BatchEvent, JSON; null fields left out). */
export interface BatchEvent {
  batch_id: string;
  type: string;
  job_id?: string;
  job_status?: string;
  job_progress?: number;
  message?: string;
  provider?: string;
  total?: number;
  counts?: Record<string, number>;
  progress?: number;
  done?: boolean;
  asset_ids?: string[];
}
