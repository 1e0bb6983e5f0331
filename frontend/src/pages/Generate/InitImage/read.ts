import type { InitImageValue } from "./types";

/** Read an image file into a data: URL with its pixel size. Throws Error when the file is not an
 * image the browser can decode. */
export async function readImageFile(file: File): Promise<InitImageValue> {
  if (!file.type.startsWith("image/")) throw new Error(`${file.name} is not an image`);
  const dataUrl = await new Promise<string>((resolve, reject) => {
    const reader = new FileReader();
    reader.onload = () => resolve(String(reader.result));
    reader.onerror = () => reject(reader.error ?? new Error("cannot read the file"));
    reader.readAsDataURL(file);
  });
  const { width, height } = await new Promise<{ width: number; height: number }>((resolve, reject) => {
    const img = new Image();
    img.onload = () => resolve({ width: img.naturalWidth, height: img.naturalHeight });
    img.onerror = () => reject(new Error(`${file.name} cannot be decoded as an image`));
    img.src = dataUrl;
  });
  return { dataUrl, width, height, name: file.name };
}
