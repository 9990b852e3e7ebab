/**
 * The Chromium side of the `trust` suite: bundles bench/_trust_page.ts
 * (scripts/test/bundle.mjs), serves it from 127.0.0.1
 * (scripts/test/page_server.mjs), starts headless Chromium with
 * playwright-core (LATTICE_CHROMIUM or /usr/bin/chromium) and returns what
 * {@link measureTrust} measured in the page. Not a suite.
 *
 * @module
 */
import { existsSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import process from "node:process";
import type { Server } from "node:http";
import { type Browser, chromium } from "playwright-core";
import { bundle } from "../scripts/test/bundle.mjs";
import { startServer } from "../scripts/test/page_server.mjs";
import { CHROMIUM_ARGS } from "../scripts/test/chromium_args.mjs";
import type { TrustFigures } from "./_trust_measure.ts";

/** The trust figures in Chromium, with its version; undefined (and why) when there is no Chromium. */
export async function trustInChromium(): Promise<{ version: string; figures: TrustFigures } | string> {
  const exe = process.env.LATTICE_CHROMIUM ?? "/usr/bin/chromium";
  if (!existsSync(exe)) return `no Chromium at ${exe} (apt-get install chromium, or set LATTICE_CHROMIUM)`;
  const dir = mkdtempSync(join(tmpdir(), "lattice-bench-trust-"));
  let server: Server | undefined;
  let browser: Browser | undefined;
  try {
    const esbuild = await import("esbuild");
    const error = await bundle(esbuild, "bench/_trust_page.ts", join(dir, "trust-page.js"));
    if (error) throw new Error(`cannot bundle bench/_trust_page.ts:\n${error}`);
    const started = await startServer(dir) as { server: Server; url: string };
    server = started.server;
    browser = await chromium.launch({
      executablePath: exe,
      headless: true,
      args: CHROMIUM_ARGS,
      timeout: 60_000,
    });
    const page = await (await browser.newContext()).newPage();
    await page.goto(`${started.url}/`, { timeout: 30_000 });
    const figures = await page.evaluate(
      async (src) => (await import(src)).measureTrust() as Promise<TrustFigures>,
      "/bundles/trust-page.js",
    );
    return { version: browser.version(), figures };
  } finally {
    await browser?.close().catch(() => {});
    if (server) {
      server.closeAllConnections?.();
      await new Promise<void>((resolve) => server!.close(() => resolve()));
    }
    rmSync(dir, { recursive: true, force: true });
  }
}
