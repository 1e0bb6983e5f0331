/** The gallery's filter values; empty strings mean "any". Dates are local `YYYY-MM-DD` days. */
export interface GalleryFilterValues {
  q: string;
  provider: string;
  model: string;
  media: "" | "image" | "video";
  from: string;
  to: string;
  /** Admins only: one owner's assets. */
  owner: string;
}

/** A provider choice of the filter: its id and label. */
export interface ProviderChoice {
  id: string;
  label: string;
}
