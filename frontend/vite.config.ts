/// <reference types="vitest/config" />
// Builds the studio's UI into backend/image_studio/web/, which the server mounts at /image-studio/
// (standalone and inside Open WebUI). `npm run dev` proxies the API to a studio on :8765.
import { defineConfig } from "vite";
import { svelte } from "@sveltejs/vite-plugin-svelte";
import { fileURLToPath } from "node:url";

const outDir = fileURLToPath(new URL("../backend/image_studio/web", import.meta.url));

export default defineConfig({
  base: "/image-studio/",
  plugins: [svelte()],
  build: { outDir, emptyOutDir: true, sourcemap: false, chunkSizeWarningLimit: 900 },
  server: {
    port: 5173,
    host: "127.0.0.1",
    proxy: { "/api/v1/image-studio": process.env.STUDIO_URL ?? "http://127.0.0.1:8765" },
  },
  test: { include: ["tests/**/*.test.ts"], environment: "node" },
});
