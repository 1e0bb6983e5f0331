/** Painting mode: paint marks the area to repaint (white in the mask), erase unmarks it. */
export type BrushMode = "paint" | "erase";
