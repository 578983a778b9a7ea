// The console is served by the Nimbus binary under /_console/ (index also at /).
// NIMBUS_CONSOLE_OUT lets the build script write the bundle into Cargo's OUT_DIR.
import { defineConfig } from "vite";

export default defineConfig({
  base: "/_console/",
  esbuild: { jsx: "automatic", jsxImportSource: "preact" },
  build: {
    outDir: process.env.NIMBUS_CONSOLE_OUT ?? "dist",
    emptyOutDir: true,
    chunkSizeWarningLimit: 4096,
    sourcemap: false,
  },
  test: { environment: "node", include: ["src/**/*.test.ts"] },
} as any);
