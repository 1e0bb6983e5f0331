/**
 * The caller's job queue as the Generate page shows it: recent jobs from `GET /jobs`, new ones
 * put on top by {@link JobQueue.add}, each live job followed by one SSE reader
 * (`GET /jobs/{id}/events`) that ends with the job or with {@link JobQueue.close}.
 */
import { api, unwrap, type Job } from "../../api/client";
import { readEvents } from "../../api/sse";
import type { BatchEvent, BatchInfo, JobEvent, QueueItem } from "./types";
import { gridLabelOf, promptNoteOf } from "./notes";

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
    promptNote: promptNoteOf(job.prompt_info),
    gridLabel: job.batch_id ? gridLabelOf(job.request) : null,
    createdAt: job.created_at,
  };
}

/** The live queue. `onSucceeded` is called once per job that succeeds while followed. */
export class JobQueue {
  items = $state<QueueItem[]>([]);
  /** Batches seen in the queue, by id. */
  batches = $state<Record<string, BatchInfo>>({});
  loading = $state(false);
  error = $state<string | null>(null);
  onSucceeded: ((item: QueueItem) => void) | null = null;
  private readers = new Map<string, AbortController>();
  private batchReaders = new Map<string, AbortController>();
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
        if (item.batchId) {
          if (!this.batches[item.batchId]) void this.syncBatch(item.batchId, true);
        } else if (LIVE.has(item.status)) this.follow(item.id);
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

  /** Put the jobs of batch `batchId` just queued on top (in submission order) and follow the
   * batch with one event stream instead of one per job. */
  addBatch(batchId: string, jobs: Job[]): void {
    if (this.closed) return;
    const ids = new Set(jobs.map((j) => j.id));
    this.items = [...jobs.map(itemOf), ...this.items.filter((i) => !ids.has(i.id))];
    const counts: Record<string, number> = {};
    for (const j of jobs) counts[j.status] = (counts[j.status] ?? 0) + 1;
    this.batches[batchId] = { id: batchId, total: jobs.length, counts, progress: 0, done: false, error: null };
    this.followBatch(batchId);
  }

  /** Read batch `id` (`GET /batches/{id}?jobs=true`): its summary and its listed jobs' states;
   * `follow` then follows it while it runs. */
  async syncBatch(id: string, follow = false): Promise<void> {
    try {
      const b = await unwrap(api.GET("/api/v1/image-studio/batches/{batch_id}", {
        params: { path: { batch_id: id }, query: { jobs: true } },
      }));
      if (this.closed) return;
      const prev = this.batches[id];
      this.batches[id] = { id, total: b.total, counts: b.counts, progress: b.progress, done: b.done, error: prev?.error ?? null };
      for (const job of b.jobs ?? []) {
        const item = this.get(job.id);
        if (!item) continue;
        const wasLive = LIVE.has(item.status);
        item.status = job.status;
        item.progress = job.status === "succeeded" ? 1 : (job.progress ?? item.progress);
        if (job.status !== "canceled") item.error = errorText(job) ?? item.error;
        item.provider = job.provider ?? item.provider;
        item.promptNote = promptNoteOf(job.prompt_info) ?? item.promptNote;
        if (job.status === "succeeded" && (wasLive || !item.assets.length) && b.total <= 20) void this.refresh(job.id);
      }
      if (follow && !b.done) this.followBatch(id);
    } catch (e) {
      const b = this.batches[id];
      if (b) b.error = (e as { display?: string }).display ?? String(e);
    }
  }

  /** Follow batch `id` with `GET /batches/{id}/events` until its `done` (one reader per batch). */
  followBatch(id: string): void {
    if (this.batchReaders.has(id) || this.closed) return;
    const controller = new AbortController();
    this.batchReaders.set(id, controller);
    readEvents<BatchEvent>(`/batches/${encodeURIComponent(id)}/events`, (type, data) => this.applyBatch(id, type, data), {
      signal: controller.signal,
    })
      .catch((e: unknown) => {
        if (controller.signal.aborted) return;
        const b = this.batches[id];
        if (b) b.error = `live updates stopped: ${(e as { display?: string }).display ?? String(e)}`;
      })
      .finally(() => {
        this.batchReaders.delete(id);
        // Where every job stands now (the stream ended: done, or a proxy cut it).
        if (!this.closed) void this.syncBatch(id, false);
      });
  }

  /** Apply one event of batch `id`: the batch's totals and the job that changed. */
  applyBatch(id: string, type: string, ev: BatchEvent): void {
    if (typeof ev !== "object" || ev === null) return;
    const b = this.batches[id] ?? (this.batches[id] = { id, total: 0, counts: {}, progress: 0, done: false, error: null });
    if (typeof ev.total === "number") b.total = ev.total;
    if (ev.counts) b.counts = ev.counts;
    if (typeof ev.progress === "number") b.progress = ev.progress;
    if (typeof ev.done === "boolean") b.done = ev.done;
    if (type === "done") {
      b.done = true;
      b.progress = 1;
      this.batchReaders.get(id)?.abort();
      this.batchReaders.delete(id);
      void this.syncBatch(id, false);
      return;
    }
    const item = ev.job_id ? this.get(ev.job_id) : undefined;
    if (!item) return;
    if (ev.provider) item.provider = ev.provider;
    if (typeof ev.job_progress === "number") item.progress = ev.job_progress;
    if (ev.job_status) item.status = ev.job_status as QueueItem["status"];
    if (type === "failed" || type === "expired") item.error = ev.message ?? type;
    if (type === "succeeded") {
      item.progress = 1;
      if (b.total <= 20) void this.refresh(item.id);
    }
  }

  /** Cancel every job of batch `id` that has not ended (`POST /batches/{id}/cancel`). Throws ApiError. */
  async cancelBatch(id: string): Promise<void> {
    const b = await unwrap(api.POST("/api/v1/image-studio/batches/{batch_id}/cancel", { params: { path: { batch_id: id } } }));
    const cur = this.batches[id];
    this.batches[id] = { id, total: b.total, counts: b.counts, progress: b.progress, done: b.done, error: cur?.error ?? null };
    await this.syncBatch(id, false);
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
      item.promptNote = fresh.promptNote ?? item.promptNote;
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
    for (const c of this.batchReaders.values()) c.abort();
    this.batchReaders.clear();
  }
}
