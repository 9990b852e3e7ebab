// @server-only: a helper of the tests that drive Chromium pages
/**
 * What the tests that drive several Chromium pages of one origin set up
 * (tests/opfs_tabs.test.ts, tests/opfs_reload.test.ts): a bundle of mod.ts
 * (`/bundles/lattice.js`) with the OPFS worker beside it, built as the
 * browser stage builds its bundles (scripts/test/bundle.mjs,
 * scripts/opfs-worker.mjs) into a fresh directory, served from 127.0.0.1 by
 * the browser stage's page server, and headless Chromium (playwright-core;
 * LATTICE_CHROMIUM, default /usr/bin/chromium) with one browser context.
 *
 * Not a test file (no `.test.` in its name).
 */
import assert from "node:assert/strict";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import process from "node:process";
import { type Browser, type BrowserContext, chromium } from "playwright-core";
import { CHROMIUM_ARGS } from "../scripts/test/chromium_args.mjs";
import { bundle } from "../scripts/test/bundle.mjs";
import { startServer } from "../scripts/test/page_server.mjs";
import { buildOpfsWorker, OPFS_WORKER_FILE } from "../scripts/opfs-worker.mjs";

/** The served bundle and the browser: see the module comment. */
export interface Pages {
  readonly browser: Browser;
  readonly context: BrowserContext;
  /** The origin's page (`/`), from which `/bundles/lattice.js` imports. */
  readonly url: string;
  /** The served directory: a file written there is `/bundles/<name>` (`.js` names). */
  readonly dir: string;
  /** Closes the browser and the server, removes the directory. */
  close(): Promise<void>;
}

/** Builds, serves and launches (see the module comment); `label` names the temporary directory. */
export async function startPages(label: string): Promise<Pages> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), `lattice-${label}-`));
  let server: { close(): void } | undefined;
  let browser: Browser | undefined;
  const close = async () => {
    await browser?.close();
    server?.close();
    fs.rmSync(dir, { recursive: true, force: true });
  };
  try {
    const esbuild = await import("esbuild");
    await buildOpfsWorker(esbuild, path.join(dir, OPFS_WORKER_FILE));
    assert.equal(await bundle(esbuild, "mod.ts", path.join(dir, "lattice.js")), null);
    const started = await startServer(dir);
    server = started.server;
    browser = await chromium.launch({
      executablePath: process.env.LATTICE_CHROMIUM ?? "/usr/bin/chromium",
      args: CHROMIUM_ARGS.filter((x) => x !== "--headless"),
    });
    return { browser, context: await browser.newContext(), url: started.url, dir, close };
  } catch (e) {
    await close();
    throw e;
  }
}
