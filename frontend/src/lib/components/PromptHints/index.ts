export { default } from "./PromptHints.svelte";
export { hintSummary, type PromptCheck } from "./hints";
