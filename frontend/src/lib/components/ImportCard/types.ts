/** Props and data of {@link ImportCard}. */

/** One line of the import plan: the config key, its value now and the imported one (secrets
 * masked); `conflict` when it changes something that exists (applied only with force). */
export interface ImportChange {
  key: string;
  old: unknown;
  new: unknown;
  conflict: boolean;
}

/** `POST /openwebui/import-config`'s answer. */
export interface ImportOutcome {
  dry_run: boolean;
  refused: boolean;
  added: string[];
  changed: string[];
  unchanged: string[];
  applied: string[];
  changes: ImportChange[];
  lines: string[];
  notes: string[];
}

export interface ImportCardProps {
  /** Called after an import wrote something, to reload the config and the providers. */
  onapplied: () => Promise<void> | void;
}
