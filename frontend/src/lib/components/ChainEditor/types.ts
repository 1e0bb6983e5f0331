/** Props of {@link ChainEditor}. */
export interface ChainProvider {
  id: string;
  label: string;
  enabled: boolean;
}

export interface ChainEditorProps {
  /** The saved fallback chain (provider ids, first tried first). */
  chain: string[];
  /** Every configured provider (those not in the chain can be added). */
  providers: ChainProvider[];
  /** Store a new order; resolves when saved, throws ApiError when refused. */
  onsave: (chain: string[]) => Promise<void>;
}
