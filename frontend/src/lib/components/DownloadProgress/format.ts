/** Byte counts for people. */

const UNITS = ["B", "KB", "MB", "GB", "TB", "PB"];

/** `bytes` in binary-prefixed units with 3 significant digits: 0 -> "0 B", 1536 -> "1.50 KB",
 * 5_000_000 -> "4.77 MB" (KB = 1024 bytes). Negative or non-finite input -> "—". */
export function formatBytes(bytes: number): string {
  if (!Number.isFinite(bytes) || bytes < 0) return "—";
  let value = bytes;
  let unit = 0;
  while (value >= 1024 && unit < UNITS.length - 1) {
    value /= 1024;
    unit++;
  }
  if (unit === 0) return `${Math.round(value)} B`;
  return `${value >= 100 ? value.toFixed(0) : value >= 10 ? value.toFixed(1) : value.toFixed(2)} ${UNITS[unit]}`;
}
