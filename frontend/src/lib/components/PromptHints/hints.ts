import type { Schemas } from "../../api/client";

/** What `POST /prompts/validate` answers. */
export type PromptCheck = Schemas["ValidateOut"];

/**
 * The one-line summary under the prompt: "3,412 characters" and, when the provider reads with
 * CLIP (`token_limit` set), "~92 / 75 CLIP tokens"; then what the server will do
 * (`optimize`: an LLM shortens it; `refuse`: a 400 with the limit).
 */
export function hintSummary(check: PromptCheck): { text: string; level: "ok" | "warn" | "bad" } {
  const parts = [`${check.length.toLocaleString("en")} characters`];
  if (check.token_limit) parts.push(`~${check.tokens.toLocaleString("en")} / ${check.token_limit} CLIP tokens`);
  let level: "ok" | "warn" | "bad" = "ok";
  if (check.action === "refuse") {
    parts[0] += `: over the ${check.hard_limit.toLocaleString("en")}-character limit, the studio will refuse it`;
    level = "bad";
  } else if (check.action === "optimize") {
    parts[0] += ": an LLM will shorten it before it runs";
    level = "warn";
  } else if (check.token_limit && check.tokens > check.token_limit) level = "warn";
  return { text: parts.join(" · "), level };
}
