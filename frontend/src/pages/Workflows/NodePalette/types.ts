import type { ObjectInfo } from "../../../lib/core/objectInfo";

export interface NodePaletteProps {
  /** The node catalogue (`/object_info`). */
  info: ObjectInfo;
  /** Add a node of this class to the graph. */
  onadd: (classType: string) => void;
  disabled?: boolean;
}
