/** Inputs of {@link gridWindow}: where the viewport is over the grid and how the grid is laid out. */
export interface GridWindowInput {
  /** Top of the visible part, in pixels from the top of the grid (may be negative: grid below the fold). */
  viewTop: number;
  /** Height of the visible part in pixels. */
  viewHeight: number;
  /** Number of items in the grid. */
  itemCount: number;
  /** Columns per row (at least 1). */
  columns: number;
  /** Height of one row in pixels, gap included (greater than 0). */
  rowHeight: number;
  /** Rows rendered above and below the visible ones. */
  overscan: number;
}

/** Which items to render: indices `[start, end)`, the rows `[startRow, endRow)`, the pixel
 * offset of `startRow`, and the grid's total height in pixels. */
export interface GridWindow {
  start: number;
  end: number;
  startRow: number;
  endRow: number;
  rowCount: number;
  offsetTop: number;
  totalHeight: number;
}
