export type { ControlDescriptor, FieldErrors } from "../../core/controls";
