export { default } from "./GalleryFilters.svelte";
export type { GalleryFilterValues, ProviderChoice } from "./types";
