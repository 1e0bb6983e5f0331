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
