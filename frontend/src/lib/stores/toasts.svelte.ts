/** Short notices at the corner of the page (an `aria-live` region reads them out). */

export interface Toast {
  id: number;
  kind: "info" | "success" | "error";
  text: string;
}

class Toasts {
  items = $state<Toast[]>([]);
  private next = 1;

  /** Show `text` for `ms` milliseconds (errors stay until dismissed when `ms` is 0). */
  push(text: string, kind: Toast["kind"] = "info", ms = kind === "error" ? 8000 : 4000): void {
    const id = this.next++;
    this.items = [...this.items, { id, kind, text }];
    if (ms > 0) setTimeout(() => this.dismiss(id), ms);
  }

  dismiss(id: number): void {
    this.items = this.items.filter((t) => t.id !== id);
  }
}

export const toasts = new Toasts();

/** Report a caught error as a toast; returns its message. */
export function reportError(e: unknown, prefix = ""): string {
  const msg = (e as { display?: string })?.display ?? (e instanceof Error ? e.message : String(e));
  toasts.push(prefix ? `${prefix}: ${msg}` : msg, "error");
  return msg;
}
