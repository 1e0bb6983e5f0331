export { default } from "./ProviderForm.svelte";
export type * from "./types";
export { credentialLabel, serverFieldErrors, buildProviderConfig } from "./provider-form";
