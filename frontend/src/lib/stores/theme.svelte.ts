/**
 * Light and dark themes. Inside Open WebUI the studio follows Open WebUI's own choice
 * (`localStorage.theme`: light, dark, oled-dark or system); standalone it follows the system
 * until the user picks one (kept in `localStorage["image-studio.theme"]`).
 */

export type ThemeChoice = "system" | "light" | "dark";
const KEY = "image-studio.theme";

function systemDark(): boolean {
  return globalThis.matchMedia?.("(prefers-color-scheme: dark)").matches ?? false;
}

function stored(): ThemeChoice {
  try {
    const own = globalThis.localStorage?.getItem(KEY);
    if (own === "light" || own === "dark" || own === "system") return own;
    const owui = globalThis.localStorage?.getItem("theme");
    if (owui === "light") return "light";
    if (owui && owui.includes("dark")) return "dark";
  } catch {
    /* no storage */
  }
  return "system";
}

class Theme {
  choice = $state<ThemeChoice>(stored());
  dark = $derived(this.choice === "dark" || (this.choice === "system" && systemDark()));

  set(choice: ThemeChoice): void {
    this.choice = choice;
    try {
      globalThis.localStorage?.setItem(KEY, choice);
    } catch {
      /* no storage */
    }
  }

  /** Apply to <html>: `data-theme="dark|light"`. */
  apply(): void {
    document.documentElement.dataset.theme = this.dark ? "dark" : "light";
  }
}

export const theme = new Theme();
