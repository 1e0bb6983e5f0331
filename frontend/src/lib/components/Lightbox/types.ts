import type { Asset } from "../../api/client";

/** Props of the Lightbox: the `asset` shown (null: closed), whether there is a previous or next
 * asset, and the callbacks. The lightbox deletes through the API itself and then calls
 * `ondeleted(id)` so the page drops the asset from its list. */
export interface LightboxProps {
  asset: Asset | null;
  hasPrev?: boolean;
  hasNext?: boolean;
  /** e.g. "3 of 120"; shown in the title bar when given. */
  position?: string;
  onprev?: () => void;
  onnext?: () => void;
  onclose: () => void;
  /** After the dialog closed: `opener` is what had focus when it opened. When given, it must
   * place the focus itself; without it the focus goes back to `opener`. */
  onclosed?: (opener: HTMLElement | null) => void;
  ondeleted?: (id: string) => void;
}

/** One line of the parameter list: a readable key and the value as text. */
export interface ParamEntry {
  key: string;
  value: string;
}
