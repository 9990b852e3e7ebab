/**
 * Runs bundled test files one after another in one page of a browser, each in a fresh document
 * (so a fresh JS realm), and collects the shim's results; after a timeout or crash the page is
 * replaced.
 *
 * @module
 */

import { TEST_TIMEOUT_MS } from "./config.mjs";
import { secs } from "./output.mjs";
import { TIMED_OUT, timeout } from "./process.mjs";

/**
 * Runs bundled test files one after another in one page of a fresh browser (a new document, so
 * a fresh JS realm, per file). After a timeout or crash the page is replaced.
 */
export class PageRunner {
  constructor(browser, baseUrl) {
    this.browser = browser;
    this.baseUrl = baseUrl;
    this.context = null;
    this.page = null;
    this.logs = [];
  }

  async open() {
    if (this.page && !this.page.isClosed()) return this.page;
    this.context = await this.browser.newContext();
    this.page = await this.context.newPage();
    this.page.on("console", (m) => {
      if (m.type() === "error" || m.type() === "warning") this.logs.push(`[console.${m.type()}] ${m.text()}`);
    });
    this.page.on("pageerror", (e) => this.logs.push(`[pageerror] ${e.message}`));
    this.page.on("crash", () => this.logs.push("[page crashed]"));
    return this.page;
  }

  async reset() {
    const context = this.context;
    this.context = null;
    this.page = null;
    if (context) await Promise.race([context.close().catch(() => {}), timeout(10_000)]);
  }

  /** Runs one file; returns { results, fileErrors, logs }. */
  async run(bundleName, fileTimeoutMs, extraConfig = {}) {
    this.logs = [];
    const fileErrors = [];
    let results = [];
    let healthy = false;
    try {
      const page = await this.open();
      await page.goto(`${this.baseUrl}/?file=${encodeURIComponent(bundleName)}`, { timeout: 30_000 });
      const run = page.evaluate(async ({ src, testTimeout, extraConfig }) => {
        globalThis.__LATTICE_TEST_CONFIG__ = { ...extraConfig, timeout: testTimeout };
        let loadError = null;
        try {
          await import(src);
        } catch (e) {
          loadError = e && e.stack ? String(e.stack) : String(e);
        }
        const rt = globalThis.__latticeTest;
        const report = rt ? await rt.done() : { results: [] };
        return { loadError, registered: !!rt, ...report };
      }, { src: `/bundles/${bundleName}`, testTimeout: TEST_TIMEOUT_MS, extraConfig });
      run.catch(() => {});
      const limit = timeout(fileTimeoutMs, TIMED_OUT);
      let res;
      try {
        res = await Promise.race([run, limit]);
      } catch (e) {
        res = { crashed: String(e?.message ?? e).split("\n")[0] };
      } finally {
        limit.cancel();
      }
      if (res === TIMED_OUT) {
        const probe = page.evaluate(() => ({
          current: globalThis.__latticeTest?.current?.() ?? null,
          results: globalThis.__latticeTest?.results?.() ?? [],
        }));
        probe.catch(() => {});
        const partial = await Promise.race([probe, timeout(3000, null)]);
        results = partial?.results ?? [];
        fileErrors.push({
          name: "(file timed out)",
          message: `no result after ${secs(fileTimeoutMs)}` +
            (partial?.current ? `; still running: ${partial.current}` : ""),
        });
      } else if (res.crashed) {
        fileErrors.push({ name: "(page failure)", message: res.crashed });
      } else {
        healthy = true;
        results = res.results;
        if (res.loadError) {
          const hint = /node:|bun:/.test(res.loadError)
            ? "\n(the file imports a server-only module: tag it `// @server-only: <reason>` in its first 5 lines)"
            : "";
          fileErrors.push({ name: "(module failed to load)", message: res.loadError + hint });
        } else if (!res.registered) {
          fileErrors.push({ name: "(no tests)", message: "the file registered no node:test tests" });
        }
      }
    } catch (e) {
      fileErrors.push({ name: "(page failure)", message: String(e?.message ?? e).split("\n")[0] });
    } finally {
      if (!healthy) await this.reset();
    }
    return { results, fileErrors, logs: this.logs };
  }
}
