export type { LoraRow } from "../../core/controls";
