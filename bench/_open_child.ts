/**
 * Child process of the `local` suite (bench/local.bench.ts) that opens a
 * database in a fresh process: `open <dir> [read]` times
 * `open({ path: dir })` from call to resolved and reports RSS before and
 * after, and with `read`, after reading every node once (`list` over the
 * whole database). Prints one JSON object on stdout.
 *
 * It loads Lattice and nothing else: no `node:` module (on Deno, the first
 * one loads its Node compatibility layer, about 10 MB of RSS that the
 * figures would otherwise count against Lattice; Lattice itself loads none
 * there). The other child modes live in `_local_child.ts`.
 *
 * RSS is read after a forced garbage collection (Deno needs
 * `--v8-flags=--expose-gc`, Bun has `Bun.gc`), so it is what the process
 * holds, not garbage it has not collected yet.
 *
 * @module
 */
import { open } from "../mod.ts";

interface Runtime {
  args: string[];
  rss(): number;
  write(line: string): void;
  exit(code: number): never;
}

/** Deno's namespace, or the `process` global of Bun and Node (native there, so free to touch). */
function runtime(): Runtime {
  const g = globalThis as {
    Deno?: {
      args: string[];
      memoryUsage(): { rss: number };
      stdout: { writeSync(b: Uint8Array): number };
      exit(code: number): never;
    };
    process?: {
      argv: string[];
      memoryUsage(): { rss: number };
      stdout: { write(s: string): boolean };
      exit(code: number): never;
    };
  };
  if (g.Deno !== undefined) {
    const D = g.Deno;
    return {
      args: D.args,
      rss: () => D.memoryUsage().rss,
      write(line) {
        const bytes = new TextEncoder().encode(line);
        for (let off = 0; off < bytes.length;) off += D.stdout.writeSync(bytes.subarray(off));
      },
      exit: (code) => D.exit(code),
    };
  }
  const p = g.process!;
  return {
    args: p.argv.slice(2),
    rss: () => p.memoryUsage().rss,
    write: (l) => p.stdout.write(l),
    exit: p.exit,
  };
}

/** Collects garbage if the runtime lets us (Deno with `--v8-flags=--expose-gc`, Bun); returns whether it did. */
export function collectGarbage(): boolean {
  const g = globalThis as { gc?: () => void; Bun?: { gc(force: boolean): void } };
  if (g.Bun) g.Bun.gc(true);
  else if (g.gc) g.gc();
  else return false;
  return true;
}

async function openMode(rt: Runtime, dir: string, read: boolean): Promise<Record<string, unknown>> {
  const rss = (): number => {
    collectGarbage();
    return rt.rss();
  };
  const gcs = collectGarbage();
  const rssBefore = rss();
  const t0 = performance.now();
  const db = await open({ path: dir });
  const openNs = (performance.now() - t0) * 1e6;
  const rssOpen = rss();
  const result: Record<string, unknown> = { engine: db.storage, openNs, rssBefore, rssOpen, gc: gcs };
  if (read) {
    let nodes = 0, fields = 0;
    const t1 = performance.now();
    for await (const { data } of db.list()) {
      nodes++;
      fields += Object.keys(data).length;
    }
    Object.assign(result, { nodes, fields, readNs: (performance.now() - t1) * 1e6, rssRead: rss() });
  }
  await db.close();
  return result;
}

if (import.meta.main) {
  const rt = runtime();
  const [mode, dir, read] = rt.args;
  if (mode !== "open" || dir === undefined) throw new Error("usage: _open_child.ts open <dir> [read]");
  rt.write(JSON.stringify(await openMode(rt, dir, read === "read")) + "\n");
  rt.exit(0);
}
