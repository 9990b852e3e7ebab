/**
 * The `hostile` suite (issue 11): what each attack of bench/_hostile_attacks.ts
 * costs a real node, and what it costs the honest traffic beside it.
 *
 * For each attack, on fresh processes: a victim (`lattice serve --path DIR
 * --json` on 127.0.0.1, a child process) and an honest peer (`lattice serve
 * --memory`, bootstrapped to the victim). The attack's `prepare` runs first
 * (the state it needs: a graph, tombstones), then the peer joins and catches
 * up. The honest workload is open-loop: a `PUT` on the peer every
 * {@link WRITE_INTERVAL_MS}, each timed until the victim's event stream
 * (`GET /v1/watch?prefix=honest/`, resumed with `Last-Event-ID` if it drops)
 * shows it — write → visible through gossip and the victim. It runs
 * {@link PHASE_MS} alone (idle), then again with the attack running, until the
 * attack has ended and {@link TAIL_MS} more. Each attack is sustained: run
 * again and again for {@link PHASE_MS}, so that the attacked phase measures
 * honest writes under attack, not mostly after it, and runs in a process of
 * its own (bench/_hostile_attacker.ts), so that the attacker's work is not
 * timed as the victim's latency. A
 * write not visible within {@link VISIBLE_TIMEOUT_MS} counts as lost and
 * enters the percentiles at that timeout.
 *
 * The victim's figures come from /proc (Linux only): CPU is utime + stime of
 * /proc/<pid>/stat over each phase; peak RSS is VmHWM of /proc/<pid>/status,
 * reset (`5` into /proc/<pid>/clear_refs) before the idle phase, so the idle
 * peak is that of the idle node after its preparation and the attacked peak
 * the highest it reached under attack.
 *
 * Targets (issue 11): honest p99 under attack within 2× of the idle p99, and
 * victim peak RSS within +100 MB of the idle peak. The SSE flood is also read
 * against its control row, the same large writes with no watcher (what the
 * owner's writes cost by themselves): the watchers' own cost, flood over
 * control, is held to p99 ≤ 2× and RSS growth ≤ +20 MB.
 *
 * Cases per attack (impls `idle` and `attacked`): `<attack>: honest p50`,
 * `<attack>: honest p99` (target: idle/attacked ≥ 0.5), `<attack>: victim peak
 * RSS`, `<attack>: victim peak RSS growth` (limit ≤ 100 MB), `<attack>: victim
 * CPU` (ns of CPU in the phase). `--filter` picks attacks by these names
 * (`--filter bomb`); the table of all figures is printed before the runner's
 * summary (not with `--json`), progress goes to stderr.
 *
 * Run: `deno task bench hostile [--filter REGEXP] [--json]`. With `HOSTILE_LOG=debug` (a
 * `LATTICE_LOG` level) the nodes log at that level, and each one's stderr is
 * kept in `<tmpdir>/lattice-hostile-<attack>-victim.log` (and `-peer.log`). A full run takes
 * about 5 minutes on a quiet 2-core machine (279 s on 2026-12-07), each attack on fresh nodes.
 *
 * @module
 */
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import process from "node:process";
import { join } from "node:path";
import { type ChildProcess, spawn } from "node:child_process";
import { fileURLToPath } from "node:url";
import { runtimeName } from "../runtime/detect.ts";
import type { BenchSuite, SetupContext } from "../scripts/bench.ts";
import { type ServeProcess, startServe } from "../tests/_serve.ts";
import { type Attack, authHeaders, hostileAttacks, type Victim } from "./_hostile_attacks.ts";
import {
  cases,
  controlCases,
  overControls,
  type Phase,
  type Row,
  table,
  VISIBLE_TIMEOUT_MS,
} from "./_hostile_report.ts";

/** Space of the bench's nodes. */
const SPACE = "hostile-bench";
/** One honest write every this many ms (open loop: 50 per second). */
const WRITE_INTERVAL_MS = 20;
/**
 * Least length of the idle and of the attacked phase: 600 honest writes or
 * more each, so that p99 is not one unlucky sample (the 6th worst of 600).
 * The attack is repeated for all of it (see {@link sustain}).
 */
const PHASE_MS = 12_000;
/** bench/_hostile_attacker.ts, the attacker's process. */
const ATTACKER = fileURLToPath(new URL("./_hostile_attacker.ts", import.meta.url));
/** How long the attacked phase goes on after the attack ended. */
const TAIL_MS = 1_000;
/** Longest attacked phase; the attack itself is bounded well within it. */
const MAX_PHASE_MS = 600_000;

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

// ---------------------------------------------------------------- nodes

interface Node {
  readonly proc: ServeProcess;
  readonly victim: Victim;
}

/** Starts `lattice serve … --json` and reads its ready object (with `token` once the API has one). */
async function startNode(args: readonly string[]): Promise<Node> {
  const level = process.env.HOSTILE_LOG;
  const proc = await startServe(
    ["serve", "--http", "127.0.0.1:0", "--json", "--space", SPACE, ...args],
    level ? { env: { LATTICE_LOG: level } } : {},
  );
  const ready = JSON.parse(proc.ready.line) as { token?: unknown };
  const addr = proc.ready.addrs.find((a) => a.startsWith("/ip4/127.0.0.1/tcp/") && !a.includes("/ws"));
  if (!addr || !proc.ready.peerId) {
    await proc.kill();
    throw new Error(`the node has no TCP address on 127.0.0.1: ${proc.ready.line}`);
  }
  return {
    proc,
    victim: {
      http: proc.ready.http,
      token: typeof ready.token === "string" ? ready.token : undefined,
      peerId: proc.ready.peerId,
      addr,
      space: SPACE,
    },
  };
}

/** Stops a node; with `HOSTILE_LOG` set, its stderr goes to `<tmpdir>/lattice-hostile-<name>.log`. */
async function stopNode(node: Node | undefined, name: string): Promise<void> {
  if (!node) return;
  const timer = setTimeout(() => void node.proc.kill(), 15_000);
  await node.proc.stop();
  clearTimeout(timer);
  if (process.env.HOSTILE_LOG) {
    await writeFile(join(tmpdir(), `lattice-hostile-${name.replaceAll(" ", "-")}.log`), node.proc.stderr());
  }
}

async function getJson(node: Victim, path: string): Promise<unknown> {
  const res = await fetch(node.http + path, {
    headers: authHeaders(node),
    signal: AbortSignal.timeout(10_000),
  });
  if (!res.ok) throw new Error(`GET ${path}: ${res.status} ${await res.text()}`);
  return await res.json();
}

async function until(what: string, ms: number, check: () => Promise<boolean>): Promise<void> {
  const deadline = performance.now() + ms;
  for (;;) {
    if (await check().catch(() => false)) return;
    if (performance.now() > deadline) throw new Error(`timed out after ${ms} ms waiting for ${what}`);
    await sleep(100);
  }
}

/** Whether `a` lists `b` as a peer subscribed to the space's gossip. */
async function gossips(a: Victim, b: Victim): Promise<boolean> {
  const { peers } = await getJson(a, "/v1/peers") as { peers: { id: string; gossip?: boolean }[] };
  return peers.some((p) => p.id === b.peerId && p.gossip === true);
}

async function liveNodes(n: Victim): Promise<number> {
  return ((await getJson(n, "/v1/status")) as { nodes: number }).nodes;
}

// ---------------------------------------------------------------- /proc

/** CPU seconds (utime + stime) of a process; Linux. */
async function cpuSeconds(pid: number): Promise<number> {
  const stat = await readFile(`/proc/${pid}/stat`, "utf8");
  const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  // Fields 14 and 15 of stat(5), counted from the state (field 3) here; in clock ticks of 1/100 s.
  return (Number(fields[11]) + Number(fields[12])) / CLOCK_TICKS;
}
const CLOCK_TICKS = 100;

/** Peak resident set (VmHWM) of a process, in bytes; Linux. */
async function peakRss(pid: number): Promise<number> {
  const status = await readFile(`/proc/${pid}/status`, "utf8");
  const m = /^VmHWM:\s+(\d+) kB$/m.exec(status);
  if (!m) throw new Error(`no VmHWM in /proc/${pid}/status`);
  return Number(m[1]) * 1024;
}

/** Resets the peak resident set to the current one; false where the kernel refuses. */
async function resetPeakRss(pid: number): Promise<boolean> {
  return await writeFile(`/proc/${pid}/clear_refs`, "5").then(() => true, () => false);
}

// ---------------------------------------------------------------- the honest workload

/**
 * The victim's event stream of `honest/` nodes: when each soul was first seen.
 * Reconnects with `Last-Event-ID` when the stream drops, so nothing is missed.
 */
class Visibility {
  readonly #victim: Victim;
  readonly #waiting = new Map<string, (at: number) => void>();
  readonly #ac = new AbortController();
  #lastId: string | undefined;
  /** Resolves once the first stream is live. */
  readonly live: Promise<void>;
  #onLive!: () => void;
  reconnects = 0;

  constructor(victim: Victim) {
    this.#victim = victim;
    this.live = new Promise((r) => this.#onLive = r);
    void this.#loop();
  }

  /** Resolves with `performance.now()` when `soul` shows on the stream, or undefined after `ms`. */
  wait(soul: string, ms: number): Promise<number | undefined> {
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        this.#waiting.delete(soul);
        resolve(undefined);
      }, ms);
      this.#waiting.set(soul, (at) => {
        clearTimeout(timer);
        this.#waiting.delete(soul);
        resolve(at);
      });
    });
  }

  close(): void {
    this.#ac.abort();
  }

  async #loop(): Promise<void> {
    const decoder = new TextDecoder();
    while (!this.#ac.signal.aborted) {
      try {
        const headers = authHeaders(this.#victim, { accept: "text/event-stream" });
        if (this.#lastId) headers["last-event-id"] = this.#lastId;
        const res = await fetch(`${this.#victim.http}/v1/watch?prefix=honest%2F`, {
          headers,
          signal: this.#ac.signal,
        });
        if (!res.ok || !res.body) throw new Error(`watch answered ${res.status}`);
        this.#onLive();
        let text = "";
        for await (const chunk of res.body) {
          const at = performance.now();
          text += decoder.decode(chunk, { stream: true });
          let end: number;
          while ((end = text.indexOf("\n\n")) >= 0) {
            this.#event(text.slice(0, end), at);
            text = text.slice(end + 2);
          }
        }
      } catch {
        // dropped or refused: retry below
      }
      if (this.#ac.signal.aborted) return;
      this.reconnects++;
      await sleep(200);
    }
  }

  #event(block: string, at: number): void {
    for (const line of block.split("\n")) {
      if (line.startsWith("id: ")) this.#lastId = line.slice(4);
      else if (line.startsWith("data: ")) {
        const soul = (JSON.parse(line.slice(6)) as { soul: string }).soul;
        this.#waiting.get(soul)?.(at);
      }
    }
  }
}

/**
 * Honest writes on `peer`, one every {@link WRITE_INTERVAL_MS}, for at least
 * `minMs` and, when `attack` is given, until it settled and {@link TAIL_MS}
 * more; then waits for every write to show (or time out).
 */
async function honestPhase(
  label: string,
  peer: Victim,
  watch: Visibility,
  victimPid: number,
  minMs: number,
  attack?: Promise<unknown>,
): Promise<Phase> {
  let attackEnd = attack ? Infinity : 0;
  void attack?.finally(() => attackEnd = performance.now());
  const ms: number[] = [];
  let lost = 0;
  const one = async (soul: string, i: number) => {
    const seen = watch.wait(soul, VISIBLE_TIMEOUT_MS);
    const t0 = performance.now();
    await fetch(`${peer.http}/v1/nodes/${encodeURIComponent(soul)}`, {
      method: "PUT",
      headers: authHeaders(peer, { "content-type": "application/json" }),
      body: JSON.stringify({ i, text: `honest write ${i}` }),
      signal: AbortSignal.timeout(VISIBLE_TIMEOUT_MS),
    }).then((r) => r.body?.cancel(), () => {});
    const at = await seen;
    if (at === undefined) lost++;
    ms.push(at === undefined ? VISIBLE_TIMEOUT_MS : at - t0);
  };
  const cpu0 = await cpuSeconds(victimPid);
  const t0 = performance.now();
  const writes: Promise<void>[] = [];
  for (let i = 0;; i++) {
    const now = performance.now();
    const done = now - t0 >= minMs && now - attackEnd >= TAIL_MS;
    if (done || now - t0 > MAX_PHASE_MS) break;
    writes.push(one(`honest/${label}/${i}`, i));
    await sleep(Math.max(0, t0 + (i + 1) * WRITE_INTERVAL_MS - performance.now()));
  }
  await Promise.all(writes);
  // CPU and wall time up to the last write seen: the backlog an attack leaves is its cost too.
  const wallMs = performance.now() - t0;
  const cpuS = await cpuSeconds(victimPid).catch(() => NaN) - cpu0;
  return { ms: ms.sort((a, b) => a - b), lost, wallMs, cpuS };
}

// ---------------------------------------------------------------- the attacker's process

/**
 * One attack in a process of its own (bench/_hostile_attacker.ts): prepared
 * at {@link start}, sustained for a phase at {@link go}.
 */
class AttackerProcess {
  readonly #child: ChildProcess;
  #out = "";
  #err = "";
  readonly #exited: Promise<number | null>;
  #onLine: ((line: string) => void) | undefined;

  private constructor(child: ChildProcess, log: (line: string) => void) {
    this.#child = child;
    child.stdout!.setEncoding("utf8").on("data", (s: string) => {
      this.#out += s;
      for (let nl; (nl = this.#out.indexOf("\n")) >= 0;) {
        const line = this.#out.slice(0, nl);
        this.#out = this.#out.slice(nl + 1);
        this.#onLine?.(line);
      }
    });
    child.stderr!.setEncoding("utf8").on("data", (s: string) => {
      this.#err = (this.#err + s).slice(-4000);
      for (const line of s.split("\n")) if (line.trim()) log(line);
    });
    this.#exited = new Promise((resolve) => child.on("close", (code) => resolve(code)));
  }

  /** Starts the attacker and runs the attack's `prepare`; resolves once it is ready to attack. */
  static async start(
    attack: Attack,
    victim: Victim,
    sustainMs: number,
    log: (line: string) => void,
  ): Promise<AttackerProcess> {
    const args = [ATTACKER, attack.name, JSON.stringify(victim), String(sustainMs)];
    const child = spawn(process.execPath, runtimeName() === "deno" ? ["run", "-A", ...args] : args, {
      stdio: ["pipe", "pipe", "pipe"],
      env: { ...process.env, DENO_NO_UPDATE_CHECK: "1" },
    });
    const attacker = new AttackerProcess(child, log);
    await attacker.#line("prepared", 600_000);
    return attacker;
  }

  /** Starts the sustained attack; resolves with its outcome once its last round ended. */
  async go(): Promise<string> {
    this.#child.stdin!.write("go\n");
    const { outcome } = await this.#line("outcome", MAX_PHASE_MS) as { outcome: string };
    return outcome;
  }

  /** Ends the process (it ends by itself after {@link go}). */
  async stop(): Promise<void> {
    this.#child.stdin!.end();
    const killer = setTimeout(() => this.#child.kill("SIGKILL"), 10_000);
    await this.#exited;
    clearTimeout(killer);
  }

  /** The next JSON line holding `key`; rejects if the process ends first or after `ms`. */
  #line(key: string, ms: number): Promise<Record<string, unknown>> {
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`the attacker sent no ${key} in ${ms / 1000} s`)), ms);
      this.#onLine = (line) => {
        if (!line.startsWith("{")) return;
        const o = JSON.parse(line) as Record<string, unknown>;
        if (!(key in o)) return;
        clearTimeout(timer);
        this.#onLine = undefined;
        resolve(o);
      };
      void this.#exited.then((code) => {
        clearTimeout(timer);
        reject(new Error(`the attacker exited (${code}) before ${key}: ${this.#err.trim().slice(-500)}`));
      });
    });
  }
}

// ---------------------------------------------------------------- one attack

async function measure(attack: Attack, log: (line: string) => void): Promise<Row> {
  const dir = await mkdtemp(join(tmpdir(), "lattice-hostile-"));
  let victim: Node | undefined, peer: Node | undefined, watch: Visibility | undefined;
  let attacker: AttackerProcess | undefined;
  const notes: string[] = [];
  try {
    victim = await startNode(["--path", join(dir, "victim")]);
    const v = victim.victim, pid = victim.proc.pid;
    if (attack.prepare) log(`  preparing`);
    attacker = await AttackerProcess.start(attack, v, PHASE_MS, (line) => log(`  ${line}`));
    peer = await startNode(["--memory", "--bootstrap", v.addr]);
    const p = peer.victim;
    await until(
      "the honest peer to join the victim's gossip",
      60_000,
      async () => await gossips(v, p) && await gossips(p, v),
    );
    // Sync on connect brings the peer what prepare wrote: wait for it, so the idle phase is idle.
    await until(
      "the honest peer to catch up",
      300_000,
      async () => await liveNodes(p) === await liveNodes(v),
    );
    watch = new Visibility(v);
    await watch.live;
    await honestPhase("warm", p, watch, pid, 2_000);
    if (!await resetPeakRss(pid)) notes.push("peak RSS could not be reset: the idle peak includes the start");
    log(`  idle phase`);
    const idle = await honestPhase("idle", p, watch, pid, PHASE_MS);
    const rssIdle = await peakRss(pid);
    log(`  attack: ${attack.what}`);
    const t0 = performance.now();
    const running = attacker.go().then(
      (outcome) => `${outcome} (${((performance.now() - t0) / 1000).toFixed(1)} s)`,
      (e: Error) => `the attack failed: ${e.message}`,
    );
    const attacked = await honestPhase("attacked", p, watch, pid, PHASE_MS, running);
    const outcome = await running;
    const alive = await Promise.race([victim.proc.exited.then(() => false), sleep(10).then(() => true)]);
    const rssAttacked = alive ? await peakRss(pid) : NaN;
    if (!alive) {
      notes.push(`the victim exited during the attack; stderr: ${victim.proc.stderr().slice(-500)}`);
    }
    if (watch.reconnects > 0) notes.push(`the honest event stream was reopened ${watch.reconnects} times`);
    log(`  ${outcome}`);
    return { attack, idle, attacked, rssIdle, rssAttacked, outcome, notes };
  } finally {
    await attacker?.stop();
    watch?.close();
    await stopNode(peer, `${attack.name} peer`);
    await stopNode(victim, `${attack.name} victim`);
    await rm(dir, { recursive: true, force: true });
  }
}

const CASE_SUFFIXES = ["honest p50", "honest p99", "victim peak RSS", "victim peak RSS growth", "victim CPU"];

export const suite: BenchSuite = {
  description: "Attacks on a `lattice serve` node: honest write → visible p50/p99, victim peak RSS and CPU",
  async setup(context: SetupContext) {
    if (process.platform !== "linux") throw new Error("the hostile suite reads /proc: it runs on Linux only");
    const wanted = (a: Attack) =>
      !context.filter || CASE_SUFFIXES.some((s) => context.filter!.test(`${a.name}: ${s}`));
    const attacks = hostileAttacks().filter(wanted);
    const log = (line: string) =>
      console.error(`[hostile ${new Date().toISOString().slice(11, 19)}] ${line}`);
    const rows: Row[] = [];
    const failed: string[] = [];
    const t0 = performance.now();
    for (const attack of attacks) {
      log(`${attack.name}`);
      try {
        rows.push(await measure(attack, log));
      } catch (e) {
        log(`  not measured: ${(e as Error).message}`);
        failed.push(`${attack.name} not measured: ${(e as Error).message}`);
      }
    }
    const took = `hostile: ${rows.length} of ${attacks.length} attacks measured in ` +
      `${((performance.now() - t0) / 1000).toFixed(0)} s`;
    if (!context.json) {
      console.log([...table(rows), ...failed.map((f) => `- ${f}`), took, ""].join("\n"));
    } else log(took);
    return { cases: [...rows.flatMap(cases), ...overControls(rows).flatMap(controlCases)], notes: failed };
  },
};
