/** Plain TypeScript graph logic of the workflow editor (no Svelte, no DOM). */
export * from "./objectInfo";
export * from "./convert";
export * from "./validate";
export * from "./params";
