/**
 * The caller's job queue as the Generate page shows it: recent jobs from `GET /jobs`, new ones
 * put on top by {@link JobQueue.add}, each live job followed by one SSE reader
 * (`GET /jobs/{id}/events`) that ends with the job or with {@link JobQueue.close}.
 */
import { api, unwrap, type Job } from "../../api/client";
import { readEvents } from "../../api/sse";
import type { JobEvent, QueueItem } from "./types";

const LIVE = new Set(["queued", "running"]);
const TERMINAL = new Set(["succeeded", "failed", "canceled", "expired"]);

/** "fell back to X" from a job's attempts: the providers that failed before the last one. */
function fallbackNote(job: Job): string | null {
  const failed = job.attempts.filter((a) => a.outcome === "failed" || a.outcome === "skipped");
  const last = job.attempts[job.attempts.length - 1];
  if (!failed.length || !last || failed.every((a) => a.provider === last.provider)) return null;
  return `fell back to ${last.provider} after ${Array.from(new Set(failed.map((a) => a.provider))).join(", ")} failed`;
}

function errorText(job: Job): string | null {
  const e = job.error as { message?: unknown } | null;
  return e && typeof e.message === "string" ? e.message : null;
}

/** A queue item for `job` as the API returned it. */
export function itemOf(job: Job): QueueItem {
  return {
    id: job.id,
    prompt: typeof job.request.prompt === "string" ? job.request.prompt : "",
    status: job.status,
    position: job.queue_position ?? null,
    progress: job.progress ?? 0,
    step: null,
    preview: null,
    provider: job.provider,
    backend: job.backend,
    note: fallbackNote(job),
    error: errorText(job),
    assets: job.assets ?? [],
    assetIds: job.asset_ids ?? [],
    batchId: job.batch_id,
    createdAt: job.created_at,
  };
}

/** The live queue. `onSucceeded` is called once per job that succeeds while followed. */
export class JobQueue {
  items = $state<QueueItem[]>([]);
  loading = $state(false);
  error = $state<string | null>(null);
  onSucceeded: ((item: QueueItem) => void) | null = null;
  private readers = new Map<string, AbortController>();
  private closed = false;

  /** Load the caller's `limit` most recent jobs (newest first) and follow the live ones;
   * fetches the thumbnails of the succeeded ones. */
  async load(limit = 20): Promise<void> {
    this.loading = true;
    this.error = null;
    try {
      const page = await unwrap(api.GET("/api/v1/image-studio/jobs", { params: { query: { limit } } }));
      if (this.closed) return;
      const known = new Set(this.items.map((i) => i.id));
      const fresh = page.items.filter((j) => !known.has(j.id)).map(itemOf);
      this.items = [...this.items, ...fresh].sort((a, b) => (a.createdAt < b.createdAt ? 1 : a.createdAt > b.createdAt ? -1 : 0));
      for (const item of fresh) {
        if (LIVE.has(item.status)) this.follow(item.id);
        else if (item.status === "succeeded" && item.assetIds.length) void this.refresh(item.id);
      }
    } catch (e) {
      this.error = (e as { display?: string }).display ?? String(e);
    } finally {
      this.loading = false;
    }
  }

  /** Put a job just queued on top and follow it. */
  add(job: Job): void {
    if (this.closed) return;
    this.items = [itemOf(job), ...this.items.filter((i) => i.id !== job.id)];
    if (LIVE.has(job.status)) this.follow(job.id);
    else if (job.status === "succeeded") void this.refresh(job.id);
  }

  /** The item of job `id`, if listed. */
  get(id: string): QueueItem | undefined {
    return this.items.find((i) => i.id === id);
  }

  /** Read the job's events until it ends (one reader per job). */
  follow(id: string): void {
    if (this.readers.has(id) || this.closed) return;
    const controller = new AbortController();
    this.readers.set(id, controller);
    readEvents<JobEvent>(`/jobs/${encodeURIComponent(id)}/events`, (type, data) => this.apply(id, type, data), {
      signal: controller.signal,
    })
      .catch((e: unknown) => {
        if (controller.signal.aborted) return;
        const item = this.get(id);
        if (item) item.note = `live updates stopped: ${(e as { display?: string }).display ?? String(e)}`;
      })
      .finally(() => {
        this.readers.delete(id);
        const item = this.get(id);
        // The stream ended without a terminal event (a proxy cut it): read where the job stands.
        if (!this.closed && !controller.signal.aborted && item && LIVE.has(item.status)) void this.refresh(id);
      });
  }

  /** Apply one SSE event of job `id`. */
  apply(id: string, type: string, ev: JobEvent): void {
    const item = this.get(id);
    if (!item || typeof ev !== "object" || ev === null) return;
    if (ev.provider) item.provider = ev.provider;
    if (ev.backend) item.backend = ev.backend;
    if (typeof ev.progress === "number") item.progress = ev.progress;
    if (typeof ev.value === "number" && typeof ev.max === "number" && ev.max > 0) item.step = { value: ev.value, max: ev.max };
    if (ev.preview) item.preview = `data:${ev.preview_mime ?? "image/jpeg"};base64,${ev.preview}`;
    switch (type) {
      case "queued":
        item.status = "queued";
        item.position = ev.position ?? null;
        break;
      case "started":
      case "progress":
      case "preview":
        item.status = "running";
        item.position = null;
        break;
      case "fallback": {
        const d = ev.data ?? {};
        const to = (d.to as string | undefined) ?? ev.provider ?? "another provider";
        item.note = `fell back to ${to}` + (d.from ? ` (${d.from} failed: ${d.reason ?? "error"})` : "");
        break;
      }
      default:
        if (TERMINAL.has(type)) {
          item.status = type as QueueItem["status"];
          item.position = null;
          if (type === "succeeded") {
            item.progress = 1;
            const ids = ev.data?.asset_ids;
            if (Array.isArray(ids)) item.assetIds = ids.map(String);
            void this.refresh(id, true);
          } else {
            const err = ev.data?.error as { message?: string } | undefined;
            item.error = ev.message ?? err?.message ?? (type === "canceled" ? null : type);
          }
          this.readers.get(id)?.abort();
        }
    }
  }

  /** Re-read job `id` (`GET /jobs/{id}`, with its assets); `notify` calls `onSucceeded`. */
  async refresh(id: string, notify = false): Promise<void> {
    try {
      const job = await unwrap(api.GET("/api/v1/image-studio/jobs/{job_id}", { params: { path: { job_id: id } } }));
      const item = this.get(id);
      if (!item || this.closed) return;
      const fresh = itemOf(job);
      item.status = fresh.status;
      item.assets = fresh.assets;
      item.assetIds = fresh.assetIds;
      item.error = fresh.error ?? item.error;
      item.provider = fresh.provider ?? item.provider;
      item.backend = fresh.backend ?? item.backend;
      item.note = item.note ?? fresh.note;
      if (fresh.status === "succeeded") item.progress = 1;
      if (LIVE.has(fresh.status)) this.follow(id);
      if (notify && fresh.status === "succeeded") this.onSucceeded?.(item);
    } catch {
      /* the item keeps what the events said */
    }
  }

  /** Cancel job `id` (`POST /jobs/{id}/cancel`); the events report the end. Throws ApiError. */
  async cancel(id: string): Promise<void> {
    const job = await unwrap(api.POST("/api/v1/image-studio/jobs/{job_id}/cancel", { params: { path: { job_id: id } } }));
    const item = this.get(id);
    if (item && TERMINAL.has(job.status)) {
      item.status = job.status;
      item.position = null;
      this.readers.get(id)?.abort();
    }
  }

  /** Stop every reader (the page unmounts). */
  close(): void {
    this.closed = true;
    for (const c of this.readers.values()) c.abort();
    this.readers.clear();
  }
}
