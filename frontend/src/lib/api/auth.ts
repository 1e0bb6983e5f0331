/**
 * Who the browser is to the studio's API.
 *
 * Inside Open WebUI the studio is served from the same origin, so Open WebUI's session token
 * (`localStorage.token`, also sent as the `token` cookie) signs every call. Standalone the
 * server either has no API keys (a loopback server: every caller is the local admin) or wants
 * one: the sign-in form keeps it in `localStorage["image-studio.api_key"]`.
 */

export const API_KEY_STORAGE = "image-studio.api_key";
export const OWUI_TOKEN_STORAGE = "token";

function read(key: string): string | null {
  try {
    return globalThis.localStorage?.getItem(key) ?? null;
  } catch {
    return null;
  }
}

/** The studio API key saved by the standalone sign-in form, if any. */
export function savedApiKey(): string | null {
  return read(API_KEY_STORAGE);
}

/** Open WebUI's session token (a JWT), when the page runs inside Open WebUI's origin. */
export function openWebUIToken(): string | null {
  return read(OWUI_TOKEN_STORAGE);
}

/** Save (or with null, forget) the standalone API key. */
export function saveApiKey(key: string | null): void {
  try {
    if (key) globalThis.localStorage?.setItem(API_KEY_STORAGE, key);
    else globalThis.localStorage?.removeItem(API_KEY_STORAGE);
  } catch {
    /* private mode: the key lives for this page only */
  }
}

/** The bearer credential to send: the studio key first, then Open WebUI's token. */
export function credential(): string | null {
  return savedApiKey() ?? openWebUIToken();
}

/** `Authorization` header for fetch calls, or none. */
export function authHeaders(): Record<string, string> {
  const token = credential();
  return token ? { Authorization: `Bearer ${token}` } : {};
}

/**
 * A URL usable where no header can be set (`<img src>`, `<video src>`, download links).
 * Standalone with an API key, the key goes in `?api_key=` (the server accepts it there);
 * inside Open WebUI the `token` cookie already signs the request.
 */
export function authedUrl(url: string): string {
  const key = savedApiKey();
  if (!key) return url;
  const sep = url.includes("?") ? "&" : "?";
  return `${url}${sep}api_key=${encodeURIComponent(key)}`;
}
