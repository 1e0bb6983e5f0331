/**
 * The signed-in caller (`GET /me`): owner, role, host. Loaded once at start; a 401 leaves
 * `needsKey` set so the shell shows the API-key sign-in (standalone) or a link back to
 * Open WebUI's sign-in (inside Open WebUI).
 */
import { api, ApiError, unwrap, type Me } from "../api/client";
import { openWebUIToken } from "../api/auth";

class Session {
  me = $state<Me | null>(null);
  loading = $state(true);
  needsKey = $state(false);
  error = $state<string | null>(null);

  get isAdmin(): boolean {
    return this.me?.is_admin ?? false;
  }

  /** Inside Open WebUI (known from `/me`, or guessed from its token before). */
  get inOpenWebUI(): boolean {
    return this.me ? this.me.host === "openwebui" : openWebUIToken() !== null;
  }

  async load(): Promise<void> {
    this.loading = true;
    this.error = null;
    try {
      this.me = await unwrap(api.GET("/api/v1/image-studio/me"));
      this.needsKey = false;
    } catch (e) {
      this.me = null;
      if (e instanceof ApiError && e.status === 401) this.needsKey = true;
      else this.error = e instanceof Error ? e.message : String(e);
    } finally {
      this.loading = false;
    }
  }
}

export const session = new Session();
