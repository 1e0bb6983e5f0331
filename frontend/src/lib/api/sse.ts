/**
 * Server-Sent Events over fetch (EventSource cannot send an Authorization header).
 * Wire format: the WHATWG HTML "server-sent events" section — lines `event:`, `data:`, `id:`,
 * comments starting with `:`, an empty line ends an event.
 */
import { apiFetch } from "./client";

export interface SseMessage {
  event: string;
  data: string;
  id: string | null;
}

/** Parse SSE text incrementally: feed chunks, get the complete messages. */
export class SseParser {
  private buffer = "";
  private event = "";
  private data: string[] = [];
  private id: string | null = null;

  /** Feed a decoded chunk; returns the messages it completed. */
  push(chunk: string): SseMessage[] {
    this.buffer += chunk;
    const out: SseMessage[] = [];
    let nl: number;
    while ((nl = this.buffer.search(/\r\n|\r|\n/)) >= 0) {
      const line = this.buffer.slice(0, nl);
      const sepLen = this.buffer.startsWith("\r\n", nl) ? 2 : 1;
      this.buffer = this.buffer.slice(nl + sepLen);
      if (line === "") {
        if (this.data.length) out.push({ event: this.event || "message", data: this.data.join("\n"), id: this.id });
        this.event = "";
        this.data = [];
        continue;
      }
      if (line.startsWith(":")) continue;
      const colon = line.indexOf(":");
      const field = colon < 0 ? line : line.slice(0, colon);
      let value = colon < 0 ? "" : line.slice(colon + 1);
      if (value.startsWith(" ")) value = value.slice(1);
      if (field === "event") this.event = value;
      else if (field === "data") this.data.push(value);
      else if (field === "id") this.id = value;
    }
    return out;
  }
}

/**
 * Read an SSE stream from `path` (under the API root) until it ends or `signal` aborts;
 * `onMessage` gets each message with its `data` parsed as JSON when it is JSON.
 * Resolves when the server closes the stream. Throws ApiError for a non-2xx answer.
 */
export async function readEvents<T = unknown>(
  path: string,
  onMessage: (event: string, data: T) => void,
  init: RequestInit = {},
): Promise<void> {
  const response = await apiFetch(path, { ...init, headers: { Accept: "text/event-stream", ...(init.headers ?? {}) } });
  if (!response.body) return;
  const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
  const parser = new SseParser();
  for (;;) {
    const { value, done } = await reader.read();
    if (done) break;
    for (const m of parser.push(value)) {
      let data: unknown = m.data;
      try {
        data = JSON.parse(m.data);
      } catch {
        /* plain text */
      }
      onMessage(m.event, data as T);
    }
  }
}
