export { default } from "./TemplatePicker.svelte";
export { renderPreview, variableNames } from "./templates";
export type { Template, TemplateChoice } from "./types";
