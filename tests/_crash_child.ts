// @server-only: a child process of crash.test.ts and store_sqlite.test.ts
/**
 * Run as `deno run -A tests/_crash_child.ts MODE DIR [ARGS]` or
 * `bun tests/_crash_child.ts MODE DIR [ARGS]`. Modes:
 *
 * - `write DIR ROUND SEED`: opens DIR with `open({ path })` and writes until
 *   killed, mixing awaited sequential puts, concurrent batches and
 *   overwrites of a few hot nodes. After each put resolves it prints one line:
 *   `ack KEY N` (node `KEY` now holds `valueOf(KEY, N)`, see
 *   {@link valueOf}). Prints `ready` once open.
 * - `hold DIR`: opens DIR, prints `ready`, and waits to be killed.
 * - `probe DIR`: tries to open DIR and prints one JSON line: `{"ok":true}`,
 *   or the error's `name`, `message` and `holder`.
 *
 * Not a test file (no `.test.` in its name).
 */
import process from "node:process";
import { fileURLToPath } from "node:url";
import { open } from "../mod.ts";
import { runtimeName } from "../runtime/detect.ts";
import { prng } from "./_seed.ts";

/** Number of hot nodes overwritten again and again. */
export const HOT = 8;

/** The value written to node `key` by write number `n`. */
export function valueOf(key: string, n: number): Record<string, unknown> {
  return {
    n,
    text: `${key}:${n}:` + "x".repeat(n % 300),
    even: n % 2 === 0,
    bytes: new Uint8Array([n & 0xff, (n >>> 8) & 0xff, (n >>> 16) & 0xff]),
  };
}

function out(line: string): void {
  process.stdout.write(line + "\n");
}

async function write(dir: string, round: number, seed: number): Promise<void> {
  const rand = prng(seed);
  const db = await open({ path: dir });
  out("ready");
  // Hot-node write numbers rise across rounds, so a later acknowledged write always has a larger n.
  let hot = round * 1_000_000;
  for (let i = 0;;) {
    const sequential = 1 + Math.floor(rand() * 20);
    for (let j = 0; j < sequential; j++, i++) {
      const key = `r${round}/s${i}`;
      await db.put(key, valueOf(key, i));
      out(`ack ${key} ${i}`);
    }
    const concurrent = 1 + Math.floor(rand() * 300);
    const batch: Promise<void>[] = [];
    for (let j = 0; j < concurrent; j++, i++) {
      const useHot = rand() < 0.2;
      const key = useHot ? `hot/${Math.floor(rand() * HOT)}` : `r${round}/c${i}`;
      const n = useHot ? ++hot : i;
      batch.push(db.put(key, valueOf(key, n)).then(() => out(`ack ${key} ${n}`)));
    }
    await Promise.all(batch);
  }
}

async function hold(dir: string): Promise<void> {
  await open({ path: dir });
  out("ready");
  setInterval(() => {}, 60_000);
}

async function probe(dir: string): Promise<void> {
  try {
    const db = await open({ path: dir });
    await db.close();
    out(JSON.stringify({ ok: true }));
  } catch (e) {
    const err = e as Error & { holder?: unknown };
    out(JSON.stringify({ name: err.name, message: err.message, holder: err.holder }));
  }
}

if (import.meta.main) {
  const [mode, dir, ...args] = process.argv.slice(2);
  if (mode === "write") await write(dir, Number(args[0]), Number(args[1]));
  else if (mode === "hold") await hold(dir);
  else if (mode === "probe") await probe(dir);
  else {
    console.error(`Unknown mode ${JSON.stringify(mode)}: use write, hold or probe`);
    process.exit(2);
  }
}

/** The command line that runs this file with `args` on the current runtime (same executable). */
export function childCommand(args: readonly string[]): [string, string[]] {
  const script = fileURLToPath(import.meta.url);
  return runtimeName() === "deno"
    ? [process.execPath, ["run", "-A", script, ...args]]
    : [process.execPath, [script, ...args]];
}
