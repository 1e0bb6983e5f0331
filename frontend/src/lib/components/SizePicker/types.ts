export type { AspectPreset } from "../../core/controls";
