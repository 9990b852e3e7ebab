/**
 * Stage "browser": finds Chromium, bundles the browser-eligible files, serves them, runs each in a
 * page (with the peer fixture for @peer-fixture files) and counts the results.
 *
 * @module
 */

import fs from "node:fs";
import path from "node:path";
import process from "node:process";
import { spawnSync } from "node:child_process";
import { BROWSER_FILE_TIMEOUT_MS, STAGE_TIMEOUT_MS } from "./config.mjs";
import { detail, header, lastLines, plural, secs } from "./output.mjs";
import { timeout } from "./process.mjs";
import { isServerOnly, needsPeerFixture } from "./files.mjs";
import { startPeerFixture, stopPeerFixture } from "./peer_fixture.mjs";
import { finishStage, newTally } from "./summary.mjs";
import { bundle, stackMapper } from "./bundle.mjs";
import { buildOpfsWorker, OPFS_WORKER_FILE } from "../opfs-worker.mjs";
import { startServer } from "./page_server.mjs";
import { PageRunner } from "./page_runner.mjs";
import { CHROMIUM_ARGS } from "./chromium_args.mjs";

const INSTALL_HINT =
  "install it with `apt-get update && apt-get install -y chromium` or set LATTICE_CHROMIUM " +
  "to a Chromium binary";

function findChromium() {
  const fromEnv = process.env.LATTICE_CHROMIUM;
  if (fromEnv) {
    return fs.existsSync(fromEnv)
      ? { exe: fromEnv }
      : { error: `LATTICE_CHROMIUM=${fromEnv} does not exist: ${INSTALL_HINT}.` };
  }
  if (fs.existsSync("/usr/bin/chromium")) return { exe: "/usr/bin/chromium" };
  for (const name of ["chromium", "chromium-browser"]) {
    const r = spawnSync("sh", ["-c", `command -v ${name}`], { encoding: "utf8" });
    if (r.status === 0 && r.stdout.trim()) return { exe: r.stdout.trim() };
  }
  return {
    error: `No Chromium found (looked at LATTICE_CHROMIUM, /usr/bin/chromium and PATH): ${INSTALL_HINT}.`,
  };
}

export async function stageBrowser(allFiles, tmp, handles, deno) {
  const files = allFiles.filter((f) => !isServerOnly(f));
  const serverOnly = allFiles.length - files.length;
  header(
    `chromium: ${plural(files.length, "file")}${serverOnly ? ` (${serverOnly} @server-only left out)` : ""}`,
  );
  const tally = newTally("chromium");
  const started = Date.now();
  const deadline = started + STAGE_TIMEOUT_MS;
  const found = findChromium();
  if (found.error) {
    tally.failed++;
    tally.notes.push("browser stage could not run");
    tally.failures.push({ name: "chromium not found", message: found.error });
    return finishStage(tally, Date.now() - started);
  }
  if (!files.length) return finishStage(tally, Date.now() - started);

  let lap = Date.now();
  const since = () => {
    const ms = Date.now() - lap;
    lap = Date.now();
    return secs(ms);
  };
  const esbuild = await import("esbuild");
  const bundleDir = path.join(tmp, "bundles");
  fs.mkdirSync(bundleDir, { recursive: true });
  // storage/opfs.ts starts its worker from beside the module that holds it: the test bundles.
  const worker = buildOpfsWorker(esbuild, path.join(bundleDir, OPFS_WORKER_FILE));
  const bundles = await Promise.all(files.map(async (file, i) => {
    const name = `${i}-${path.basename(file).replace(/[^\w.-]/g, "_").replace(/\.ts$/, "")}.js`;
    const error = await bundle(esbuild, file, path.join(bundleDir, name));
    return { file, name, error };
  }));
  for (const b of bundles.filter((b) => b.error)) {
    tally.failed++;
    tally.failures.push({ file: b.file, name: "(cannot run in a browser)", message: b.error });
  }
  await worker;
  const runnable = bundles.filter((b) => !b.error);
  detail(`bundled ${plural(files.length, "file")} (${since()})`);
  if (runnable.length) {
    const mapStack = stackMapper(bundleDir);
    try {
      const { chromium } = await import("playwright-core");
      const { server, url } = await startServer(bundleDir);
      handles.server = server;
      handles.browser = await chromium.launch({
        executablePath: found.exe,
        headless: true,
        args: CHROMIUM_ARGS,
        timeout: 60_000,
        // This script closes the browser itself on signals (see onSignal).
        handleSIGINT: false,
        handleSIGTERM: false,
        handleSIGHUP: false,
      });
      detail(`chromium ${handles.browser.version()} started (${since()})`);
      const runner = new PageRunner(handles.browser, url);
      for (const b of runnable) {
        const remaining = deadline - Date.now();
        if (remaining <= 0) {
          tally.failed++;
          tally.failures.push({
            file: b.file,
            name: "(not run)",
            message: `stage timed out after ${secs(STAGE_TIMEOUT_MS)}`,
          });
          continue;
        }
        let extraConfig = {};
        const fixture = needsPeerFixture(b.file)
          ? (deno
            ? await startPeerFixture(deno, url)
            : { error: "deno not found in node_modules/.bin; run npm ci" })
          : null;
        if (fixture) {
          handles.fixture = fixture.child ?? null;
          extraConfig = { peer: fixture.ready ?? { error: fixture.error } };
          detail(`${b.file}: lattice serve fixture ${fixture.ready ? "ready" : "failed"} (${since()})`);
        }
        const { results, fileErrors, logs } = await runner.run(
          b.name,
          Math.min(BROWSER_FILE_TIMEOUT_MS, remaining),
          extraConfig,
        );
        if (fixture?.child) {
          handles.fixture = null;
          const code = await stopPeerFixture(fixture.child);
          if (fixture.ready && code !== 0) {
            fileErrors.push({
              name: "(lattice serve fixture)",
              message: `the fixture node exited with ${code} instead of 0 after SIGTERM`,
            });
          }
        }
        detail(`${b.file}: ${plural(results.length, "result")} (${since()})`);
        let fileFailed = fileErrors.length > 0;
        for (const r of results) {
          if (r.status === "pass") tally.passed++;
          else if (r.status === "fail") {
            tally.failed++;
            fileFailed = true;
            tally.failures.push({ file: b.file, name: r.name, message: mapStack(r.error ?? "") });
          } else tally.skipped++;
        }
        for (const e of fileErrors) {
          tally.failed++;
          tally.failures.push({ file: b.file, ...e, message: mapStack(e.message) });
        }
        if (fileFailed && logs.length) {
          // Context only, not counted.
          tally.failures.push({
            file: b.file,
            name: "browser console",
            message: mapStack(lastLines(logs.join("\n"), 20)),
            note: true,
          });
        }
      }
    } catch (e) {
      tally.failed++;
      tally.failures.push({ name: "(browser failure)", message: String(e?.stack ?? e) });
    } finally {
      await closeHandles(handles);
      detail(`chromium closed (${since()})`);
    }
  }
  return finishStage(tally, Date.now() - started);
}

export async function closeHandles(handles) {
  const browser = handles.browser;
  const server = handles.server;
  const fixture = handles.fixture;
  handles.browser = null;
  handles.server = null;
  handles.fixture = null;
  if (fixture) await stopPeerFixture(fixture);
  if (browser) await Promise.race([browser.close().catch(() => {}), timeout(15_000)]);
  if (server) {
    server.closeAllConnections?.();
    await new Promise((r) => server.close(() => r()));
  }
}
