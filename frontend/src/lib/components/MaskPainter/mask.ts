/**
 * Turn the painter's overlay into the mask the backend wants: a PNG the size of the init image,
 * white where painted (repaint), black elsewhere (keep).
 */

/** A black/white PNG data URL of `overlay` (white where its alpha is over half), or null when
 * nothing is painted. Same pixel size as `overlay`. */
export function maskToPng(overlay: HTMLCanvasElement): string | null {
  const { width, height } = overlay;
  const ctx = overlay.getContext("2d");
  if (!ctx || !width || !height) return null;
  const src = ctx.getImageData(0, 0, width, height).data;
  const out = new ImageData(width, height);
  let painted = 0;
  for (let i = 0; i < src.length; i += 4) {
    const v = src[i + 3] > 127 ? 255 : 0;
    if (v) painted++;
    out.data[i] = out.data[i + 1] = out.data[i + 2] = v;
    out.data[i + 3] = 255;
  }
  if (!painted) return null;
  const canvas = document.createElement("canvas");
  canvas.width = width;
  canvas.height = height;
  canvas.getContext("2d")!.putImageData(out, 0, 0);
  return canvas.toDataURL("image/png");
}
