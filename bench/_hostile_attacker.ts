/**
 * Child process of the `hostile` suite (bench/hostile.bench.ts): runs one
 * attack of bench/_hostile_attacks.ts against a victim, in a process of its
 * own, so that the attacker's work (starting libp2p nodes, building frames,
 * sending megabytes) never runs in the event loop that times the honest
 * writes: what the suite measures is the victim.
 *
 * `_hostile_attacker.ts NAME VICTIM_JSON SUSTAIN_MS`
 * 1. runs the attack's `prepare` (if any) and prints `{"prepared":true}`;
 * 2. waits for a line `go` on stdin (the suite's idle phase runs meanwhile);
 * 3. runs the attack round after round (each to its end, 50 ms apart) until
 *    SUSTAIN_MS have passed, at least once, and prints
 *    `{"outcome":"<first round's outcome>; N rounds"}`.
 * Progress lines go to stderr. Exit code 0, or 1 with the error on stderr.
 *
 * @module
 */
import process from "node:process";
import { type AttackContext, hostileAttacks, type Victim } from "./_hostile_attacks.ts";

/** Pause between two rounds of a sustained attack. */
const ROUND_PAUSE_MS = 50;

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/** The next line of stdin, or undefined at its end. */
function nextLine(): Promise<string | undefined> {
  return new Promise((resolve) => {
    let buf = "";
    const onData = (chunk: Buffer) => {
      buf += chunk.toString("utf8");
      const nl = buf.indexOf("\n");
      if (nl < 0) return;
      process.stdin.off("data", onData).off("end", onEnd);
      process.stdin.pause();
      resolve(buf.slice(0, nl).trim());
    };
    const onEnd = () => resolve(undefined);
    process.stdin.on("data", onData).on("end", onEnd);
    process.stdin.resume();
  });
}

/**
 * Runs the attack round after round until `minMs` have passed, at least
 * once; the first round's outcome and the count of rounds.
 */
async function sustain(run: () => Promise<string>, minMs: number): Promise<string> {
  const t0 = performance.now();
  let rounds = 0, failed = 0, first: string | undefined;
  do {
    try {
      first ??= await run();
    } catch (e) {
      failed++;
      first ??= `failed: ${(e as Error).message}`;
    }
    rounds++;
    await sleep(ROUND_PAUSE_MS);
  } while (performance.now() - t0 < minMs);
  return `${first}; ${rounds} round${rounds === 1 ? "" : "s"}${failed ? `, ${failed} failed` : ""}`;
}

async function main(): Promise<void> {
  const [name, victimJson, ms] = process.argv.slice(2);
  const attack = hostileAttacks().find((a) => a.name === name);
  if (!attack || victimJson === undefined || !(Number(ms) >= 0)) {
    throw new Error(`usage: _hostile_attacker.ts NAME VICTIM_JSON SUSTAIN_MS (no attack named ${name})`);
  }
  const ctx: AttackContext = {
    victim: JSON.parse(victimJson) as Victim,
    log: (line) => process.stderr.write(`${line}\n`),
  };
  if (attack.prepare) await attack.prepare(ctx);
  process.stdout.write(`${JSON.stringify({ prepared: true })}\n`);
  if (await nextLine() !== "go") return; // the suite gave up
  const outcome = await sustain(() => attack.run(ctx), Number(ms));
  process.stdout.write(`${JSON.stringify({ outcome })}\n`);
}

if (import.meta.main) {
  main().then(() => process.exit(0), (e: Error) => {
    process.stderr.write(`${e.stack ?? e.message}\n`);
    process.exit(1);
  });
}
