import type { ExposedParams } from "../../../lib/core/params";

export interface ParamsPanelProps {
  /** The exposed parameters (edited in place through `onchange`). */
  params: ExposedParams;
  /** Node titles by id, to say where a parameter goes. */
  nodeLabels: Map<string, string>;
  onchange: (params: ExposedParams) => void;
  readonly?: boolean;
  /** Problems of the parameters (from checkParams). */
  problems: { param: string; message: string }[];
}
