/** An init image as the page holds it: a data: URL and its pixel size. */
export interface InitImageValue {
  dataUrl: string;
  width: number;
  height: number;
  name: string;
}
