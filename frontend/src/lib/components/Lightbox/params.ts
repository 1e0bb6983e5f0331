import type { ParamEntry } from "./types";

/** `parameters` as key/value lines sorted by key: strings as they are, numbers and booleans as
 * text, null as "—", arrays and objects as compact JSON. */
export function paramEntries(parameters: Record<string, unknown> | null | undefined): ParamEntry[] {
  return Object.entries(parameters ?? {})
    .sort(([a], [b]) => a.localeCompare(b))
    .map(([key, v]) => ({
      key,
      value: v === null || v === undefined ? "—" : typeof v === "string" ? v : typeof v === "object" ? JSON.stringify(v) : String(v),
    }));
}

/** Copy `text` to the clipboard (the async Clipboard API, else a hidden textarea and
 * `execCommand("copy")`). Throws Error when neither works. */
export async function copyText(text: string): Promise<void> {
  try {
    if (navigator.clipboard?.writeText) {
      await navigator.clipboard.writeText(text);
      return;
    }
  } catch {
    /* denied: try the old way */
  }
  const area = document.createElement("textarea");
  area.value = text;
  area.setAttribute("readonly", "");
  area.style.position = "fixed";
  area.style.opacity = "0";
  document.body.appendChild(area);
  area.select();
  const ok = document.execCommand("copy");
  area.remove();
  if (!ok) throw new Error("the browser refused to copy");
}
