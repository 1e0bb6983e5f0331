/** Template helpers shared by the Generate page's template and style pickers. */
import { api, unwrap } from "../../api/client";
import type { Template } from "./types";

/** The placeholders of `tpl` the page asks for: all but `prompt` (the page's prompt box fills it). */
export function variableNames(tpl: Template | null | undefined): string[] {
  return (tpl?.variables ?? []).filter((v) => v !== "prompt");
}

/**
 * The prompts a generation would run, from `POST /templates/render` (rendered by the same code
 * as `POST /generations`): template `id` (may be empty: styles alone apply to the prompt), the
 * non-empty `variables`, the page's `prompt` and `negative` and the `styles` in order. Null when
 * there is nothing to render. Throws ApiError (404 unknown template or style, 422 a placeholder
 * without value).
 */
export async function renderPreview(
  id: string,
  variables: Record<string, string>,
  prompt: string,
  negative: string,
  styles: string[],
  signal?: AbortSignal,
): Promise<{ prompt: string; negative_prompt: string | null } | null> {
  if (!id && !styles.length) return null;
  const vars = Object.fromEntries(Object.entries(id ? variables : {}).filter(([, v]) => v.trim() !== ""));
  return unwrap(
    api.POST("/api/v1/image-studio/templates/render", {
      body: { template: id || null, variables: vars, prompt, negative_prompt: negative || null, styles },
      signal,
    }),
  );
}
