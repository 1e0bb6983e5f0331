export { default } from "./ParamsPanel.svelte";
export type { ParamsPanelProps } from "./types";
