import type { GridWindow, GridWindowInput } from "./types";

/**
 * Columns that fit in `width` pixels when every column is at least `minColumnWidth` pixels
 * wide and columns are `gap` pixels apart; at least 1 (also for a width of 0 before layout).
 */
export function columnsFor(width: number, minColumnWidth: number, gap: number): number {
  if (!(width > 0) || !(minColumnWidth > 0)) return 1;
  return Math.max(1, Math.floor((width + gap) / (minColumnWidth + gap)));
}

/**
 * The window of a virtualized grid: the rows that intersect the view plus `overscan` rows on
 * each side, clamped to the grid, as item indices `[start, end)` (empty when the grid is out of
 * view or has no items). Pure: no DOM access, so it is unit tested.
 */
export function gridWindow(input: GridWindowInput): GridWindow {
  const columns = Math.max(1, Math.floor(input.columns));
  const rowHeight = input.rowHeight > 0 ? input.rowHeight : 1;
  const overscan = Math.max(0, Math.floor(input.overscan));
  const count = Math.max(0, Math.floor(input.itemCount));
  const rowCount = Math.ceil(count / columns);
  const totalHeight = rowCount * rowHeight;
  const top = input.viewTop;
  const bottom = input.viewTop + Math.max(0, input.viewHeight);
  if (rowCount === 0 || bottom <= 0 || top >= totalHeight) {
    // out of view: nothing visible, but keep the overscan next to the nearest edge so a grid
    // just below the fold has its first rows ready
    const startRow = top >= totalHeight ? Math.max(0, rowCount - overscan) : 0;
    const endRow = top >= totalHeight ? rowCount : Math.min(rowCount, overscan);
    return {
      start: startRow * columns, end: Math.min(count, endRow * columns), startRow, endRow, rowCount,
      offsetTop: startRow * rowHeight, totalHeight,
    };
  }
  const firstVisible = Math.floor(Math.max(0, top) / rowHeight);
  const lastVisible = Math.min(rowCount - 1, Math.ceil(Math.min(bottom, totalHeight) / rowHeight) - 1);
  const startRow = Math.max(0, firstVisible - overscan);
  const endRow = Math.min(rowCount, lastVisible + 1 + overscan);
  return {
    start: startRow * columns,
    end: Math.min(count, endRow * columns),
    startRow,
    endRow,
    rowCount,
    offsetTop: startRow * rowHeight,
    totalHeight,
  };
}
