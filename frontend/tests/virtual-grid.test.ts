import { describe, expect, it } from "vitest";
import { columnsFor, gridWindow } from "../src/lib/components/VirtualGrid/window";

const base = { viewTop: 0, viewHeight: 800, itemCount: 10_000, columns: 5, rowHeight: 200, overscan: 2 };

describe("columnsFor", () => {
  it("fits as many minimum-width columns as the width allows, gaps included", () => {
    expect(columnsFor(1000, 180, 12)).toBe(5); // 5*180 + 4*12 = 948 <= 1000; 6 needs 1140
    expect(columnsFor(948, 180, 12)).toBe(5);
    expect(columnsFor(947, 180, 12)).toBe(4);
    expect(columnsFor(355, 160, 8)).toBe(2);
  });
  it("is at least one column, also before layout", () => {
    expect(columnsFor(0, 180, 12)).toBe(1);
    expect(columnsFor(100, 180, 12)).toBe(1);
    expect(columnsFor(Number.NaN, 180, 12)).toBe(1);
  });
});

describe("gridWindow", () => {
  it("renders the visible rows plus overscan below at the top", () => {
    const w = gridWindow(base);
    // rows 0..3 visible (800 / 200), plus 2 overscan rows below
    expect(w.startRow).toBe(0);
    expect(w.endRow).toBe(6);
    expect(w.start).toBe(0);
    expect(w.end).toBe(30);
    expect(w.offsetTop).toBe(0);
    expect(w.rowCount).toBe(2000);
    expect(w.totalHeight).toBe(400_000);
  });

  it("keeps the window small deep in a 10,000-item grid", () => {
    const w = gridWindow({ ...base, viewTop: 150_050 });
    // first visible row 750 (150050 / 200), last visible 754 (ceil(150850 / 200) - 1)
    expect(w.startRow).toBe(748);
    expect(w.endRow).toBe(757);
    expect(w.start).toBe(748 * 5);
    expect(w.end).toBe(757 * 5);
    expect(w.end - w.start).toBeLessThanOrEqual(50);
    expect(w.offsetTop).toBe(748 * 200);
  });

  it("clamps at the end and for a partial last row", () => {
    const w = gridWindow({ ...base, itemCount: 23, viewTop: 0 });
    expect(w.rowCount).toBe(5);
    expect(w.endRow).toBe(5);
    expect(w.end).toBe(23);
    const bottom = gridWindow({ ...base, itemCount: 23, viewTop: 900, viewHeight: 800 });
    expect(bottom.end).toBe(23);
    expect(bottom.startRow).toBe(2); // row 4 visible, minus 2 overscan
  });

  it("counts a row that the view only touches at its edge as not visible", () => {
    const w = gridWindow({ ...base, overscan: 0, viewTop: 200, viewHeight: 400 });
    expect([w.startRow, w.endRow]).toEqual([1, 3]);
    const w2 = gridWindow({ ...base, overscan: 0, viewTop: 201, viewHeight: 400 });
    expect([w2.startRow, w2.endRow]).toEqual([1, 4]);
  });

  it("handles a grid below the fold (negative view top) and one scrolled past", () => {
    const below = gridWindow({ ...base, viewTop: -300, viewHeight: 800 });
    // the view covers grid pixels 0..500: rows 0..2, plus overscan
    expect([below.startRow, below.endRow]).toEqual([0, 5]);
    const farBelow = gridWindow({ ...base, viewTop: -2000, viewHeight: 800 });
    expect([farBelow.startRow, farBelow.endRow]).toEqual([0, 2]);
    const past = gridWindow({ ...base, itemCount: 10, viewTop: 5000 });
    expect(past.end).toBe(10);
    expect(past.startRow).toBe(0); // 2 rows only, both in the overscan next to the end
  });

  it("is empty for no items and sane for odd inputs", () => {
    const w = gridWindow({ ...base, itemCount: 0 });
    expect([w.start, w.end, w.totalHeight]).toEqual([0, 0, 0]);
    const odd = gridWindow({ ...base, columns: 0, rowHeight: 0, overscan: -3, itemCount: 3 });
    expect(odd.end).toBeLessThanOrEqual(3);
    expect(odd.start).toBe(0);
  });
});
