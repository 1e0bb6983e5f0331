export { default } from "./ParamControls.svelte";
export { default as ParamControl } from "./ParamControl.svelte";
export type { ControlDescriptor, FieldErrors } from "./types";
