/**
 * The Deno side of the `browser` suite (bench/browser.bench.ts): bundles the
 * page script (bench/_browser_page.ts, with scripts/test/bundle.mjs) and the
 * OPFS worker beside it (scripts/opfs-worker.mjs: storage/opfs.ts starts the
 * worker from beside the module holding it), serves both from 127.0.0.1
 * (scripts/test/page_server.mjs, cross-origin isolated as the test stage
 * serves them), starts headless Chromium with playwright-core (LATTICE_CHROMIUM
 * or /usr/bin/chromium; the flags of scripts/test/chromium_args.mjs) and
 * returns a {@link BrowserPage} whose calls run in one page. Not a suite.
 *
 * The page runs in a persistent profile (a fresh user-data directory, removed
 * after), as a browser user's pages do: there OPFS and IndexedDB are files on
 * disk, and a sync access handle's `write()` is a system call (µs). A plain
 * `browser.newContext()` is an incognito profile, whose OPFS lives in the
 * browser process's memory: each sync-access-handle call is then a message to
 * it (0.5–1 ms whatever its size, `flush()` free), which no user's database
 * sees. `LATTICE_BENCH_INCOGNITO=1` measures that profile instead.
 *
 * @module
 */
import { existsSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import process from "node:process";
import type { Server } from "node:http";
import { type Browser, type BrowserContext, chromium, type Page } from "playwright-core";
import { bundle } from "../scripts/test/bundle.mjs";
import { startServer } from "../scripts/test/page_server.mjs";
import { CHROMIUM_ARGS } from "../scripts/test/chromium_args.mjs";
import { buildOpfsWorker, OPFS_WORKER_FILE } from "../scripts/opfs-worker.mjs";
import type { BrowserEngine, BrowserRun, BrowserSizes } from "./_browser_page.ts";
import type { OpfsProbe } from "./_browser_probe.ts";

const PAGE_BUNDLE = "bench-browser-page.js";

/** One Chromium page with the bench script loaded. */
export interface BrowserPage {
  /** Chromium's version. */
  readonly version: string;
  /** `persistent` (a user's profile, on disk) or `incognito` (OPFS and IndexedDB in memory). */
  readonly profile: "persistent" | "incognito";
  /** Builds the foreign ops in the page (outside any timing). */
  prepare(applyOps: number): Promise<number>;
  /** One run of every phase on `engine`, in fresh databases named after `tag`. */
  run(engine: BrowserEngine, sizes: BrowserSizes, tag: string): Promise<BrowserRun>;
  /** What bounds an awaited OPFS put (bench/_browser_probe.ts). */
  probe(tag: string): Promise<OpfsProbe>;
  /** Closes the browser and the server, removes the bundles. */
  close(): Promise<void>;
}

function chromiumPath(): string {
  const exe = process.env.LATTICE_CHROMIUM ?? "/usr/bin/chromium";
  if (!existsSync(exe)) {
    throw new Error(`No Chromium at ${exe}: install it (apt-get install chromium) or set LATTICE_CHROMIUM`);
  }
  return exe;
}

/** Bundles, serves and opens the page; `log` hears of browser errors. */
export async function openBrowserPage(log: (line: string) => void): Promise<BrowserPage> {
  const dir = mkdtempSync(join(tmpdir(), "lattice-bench-browser-"));
  const incognito = process.env.LATTICE_BENCH_INCOGNITO === "1";
  let server: Server | undefined;
  let browser: Browser | undefined;
  let context: BrowserContext | undefined;
  const close = async () => {
    await context?.close().catch(() => {});
    await browser?.close().catch(() => {});
    if (server) {
      server.closeAllConnections?.();
      await new Promise<void>((resolve) => server!.close(() => resolve()));
    }
    rmSync(dir, { recursive: true, force: true });
  };
  try {
    const esbuild = await import("esbuild");
    const [error] = await Promise.all([
      bundle(esbuild, "bench/_browser_page.ts", join(dir, PAGE_BUNDLE)),
      buildOpfsWorker(esbuild, join(dir, OPFS_WORKER_FILE)),
    ]);
    if (error) throw new Error(`cannot bundle bench/_browser_page.ts:\n${error}`);
    const started = await startServer(dir) as { server: Server; url: string };
    server = started.server;
    const launch = { executablePath: chromiumPath(), headless: true, args: CHROMIUM_ARGS, timeout: 60_000 };
    if (incognito) {
      browser = await chromium.launch(launch);
      context = await browser.newContext();
    } else {
      context = await chromium.launchPersistentContext(join(dir, "profile"), launch);
      browser = context.browser() ?? undefined;
    }
    const page: Page = await context.newPage();
    page.on("console", (m) => {
      if (m.type() === "error" || m.type() === "warning") log(`[console.${m.type()}] ${m.text()}`);
    });
    page.on("pageerror", (e) => log(`[pageerror] ${e.message}`));
    await page.goto(`${started.url}/`, { timeout: 30_000 });
    const src = `/bundles/${PAGE_BUNDLE}`;
    const version = browser?.version() ?? await page.evaluate(() => navigator.userAgent);
    return {
      version,
      profile: incognito ? "incognito" : "persistent",
      prepare: (n) =>
        page.evaluate(async ({ src, n }) => (await import(src)).prepare(n) as Promise<number>, { src, n }),
      run: (engine, sizes, tag) =>
        page.evaluate(
          async ({ src, engine, sizes, tag }) =>
            (await import(src)).runEngine(engine, sizes, tag) as Promise<BrowserRun>,
          { src, engine, sizes, tag },
        ),
      probe: (tag) =>
        page.evaluate(async ({ src, tag }) => (await import(src)).probe(tag) as Promise<OpfsProbe>, {
          src,
          tag,
        }),
      close,
    };
  } catch (e) {
    await close();
    throw e;
  }
}
