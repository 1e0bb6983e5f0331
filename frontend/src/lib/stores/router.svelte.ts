/**
 * Hash routing: `#/generate`, `#/gallery?asset=ID`, ... The studio is served as static files
 * at /image-studio/ (standalone and inside Open WebUI), so the hash keeps every page a
 * reload-safe URL without server-side routes.
 */

export const PAGES = ["generate", "workflows", "gallery", "models", "settings"] as const;
export type Page = (typeof PAGES)[number];

export interface Route {
  page: Page;
  params: URLSearchParams;
}

/** Parse a location hash (`#/gallery?asset=x`) into a route; unknown pages fall back to generate. */
export function parseHash(hash: string): Route {
  const raw = hash.replace(/^#\/?/, "");
  const [path, query = ""] = raw.split("?", 2);
  const page = (PAGES as readonly string[]).includes(path) ? (path as Page) : "generate";
  return { page, params: new URLSearchParams(query) };
}

/** The hash for a page and its parameters. */
export function hashFor(page: Page, params: Record<string, string> = {}): string {
  const q = new URLSearchParams(params).toString();
  return `#/${page}${q ? `?${q}` : ""}`;
}

class Router {
  route = $state<Route>(parseHash(globalThis.location?.hash ?? ""));

  constructor() {
    globalThis.addEventListener?.("hashchange", () => {
      this.route = parseHash(globalThis.location.hash);
    });
  }

  /** Go to a page (adds a history entry). */
  go(page: Page, params: Record<string, string> = {}): void {
    globalThis.location.hash = hashFor(page, params);
  }
}

export const router = new Router();
