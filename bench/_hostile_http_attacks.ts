/**
 * The HTTP attacks of the `hostile` bench: through the victim's HTTP API on
 * 127.0.0.1.
 *
 * @module
 */
import { connect as netConnect, type Socket } from "node:net";
import { formatHlc } from "../core/clock.ts";
import {
  answer,
  type Attack,
  authHeaders,
  type HostileSizes,
  plantThroughSync,
  randomHex64,
  request,
  secs,
  sleep,
} from "./_hostile_kit.ts";

export function queryFreeze(sizes: HostileSizes): Attack {
  const n = sizes.queryNodes;
  return {
    name: "query freeze",
    what: `POST /v1/query (text/plain), path of ${sizes.queryPathSteps} "*" over ${n} fully linked nodes`,
    async prepare(ctx) {
      for (let i = 0; i < n; i++) {
        const links: Record<string, { "#": string }> = {};
        for (let j = 0; j < n; j++) links[`l${j}`] = { "#": `graph/${j}` };
        const r = await request(ctx.victim, "PUT", `/v1/nodes/graph%2F${i}`, JSON.stringify(links));
        if (r.status !== 200) throw new Error(`cannot write the graph: ${answer(r)} ${r.text}`);
      }
    },
    async run(ctx) {
      const body = JSON.stringify({ from: "graph/0", path: Array(sizes.queryPathSteps).fill("*") });
      const r = await request(ctx.victim, "POST", "/v1/query", body, "text/plain");
      return `${(body.length / 1024).toFixed(1)} KiB query answered ${answer(r)} after ${secs(r.ms)}`;
    },
  };
}

export function quadraticPut(sizes: HostileSizes): Attack {
  return {
    name: "quadratic put",
    what: `PUT of one node with ${sizes.putChildren} child objects`,
    async run(ctx) {
      const parts: string[] = [];
      for (let i = 0; i < sizes.putChildren; i++) parts.push(`"c${i}":{"v":${i}}`);
      const body = `{${parts.join(",")}}`;
      const r = await request(ctx.victim, "PUT", "/v1/nodes/wide", body);
      return `${(body.length / 1048576).toFixed(2)} MiB PUT answered ${answer(r)} after ${secs(r.ms)}`;
    },
  };
}

/**
 * `watchers` GET /v1/watch that never read, then the owner's large writes that fill them. With no
 * watchers it is the control row "large writes": the cost of those writes alone (storage, gossip of
 * 512 KiB values to the honest peer), which the SSE flood's row includes and should be read against.
 */
export function sseFlood(sizes: HostileSizes, watchers: number = sizes.sseWatchers): Attack {
  return {
    name: watchers > 0 ? "SSE flood" : "large writes (control for SSE flood)",
    what: watchers > 0
      ? `${watchers} GET /v1/watch that never read, then ${sizes.sseWrites} writes of ` +
        `${sizes.sseValueBytes / 1024} KiB`
      : `the SSE flood's ${sizes.sseWrites} writes of ${sizes.sseValueBytes / 1024} KiB, with no watcher`,
    async run(ctx) {
      const url = new URL(ctx.victim.http);
      const sockets: Socket[] = [];
      /** The status line of each watch's answer ("HTTP/1.1 200 OK"), read once; nothing after it is read. */
      const statuses = new Map<string, number>();
      const head = [
        "GET /v1/watch?prefix= HTTP/1.1",
        `Host: ${url.host}`,
        "Accept: text/event-stream",
        ...Object.entries(authHeaders(ctx.victim)).map(([k, v]) => `${k}: ${v}`),
        "",
        "",
      ].join("\r\n");
      try {
        for (let i = 0; i < watchers; i++) {
          const s = netConnect({ host: url.hostname, port: Number(url.port) });
          s.on("error", () => {});
          await new Promise<void>((resolve) => {
            s.once("connect", () => resolve());
            s.once("error", () => resolve());
          });
          s.once("data", (chunk: Uint8Array) => {
            s.pause(); // never read again: the victim's buffers fill
            const line = new TextDecoder().decode(chunk.subarray(0, 64)).split("\r\n")[0];
            const status = line.split(" ").slice(1, 2).join("") || "?";
            statuses.set(status, (statuses.get(status) ?? 0) + 1);
          });
          s.write(head);
          sockets.push(s);
        }
        await sleep(500);
        const blob = "x".repeat(sizes.sseValueBytes);
        let slowest = 0;
        const answers = new Map<string, number>();
        for (let i = 0; i < sizes.sseWrites; i++) {
          const r = await request(ctx.victim, "PUT", `/v1/nodes/flood%2F${i}`, JSON.stringify({ blob }));
          slowest = Math.max(slowest, r.ms);
          answers.set(answer(r), (answers.get(answer(r)) ?? 0) + 1);
        }
        await sleep(2000);
        const summary = [...answers].map(([a, n]) => `${n}× ${a}`).join(", ");
        const watches = [...statuses].map(([st, n]) => `${n}× ${st}`).join(", ") || "none answered";
        return `${sockets.length} watchers (${watches}); writes ${summary}, ` +
          `slowest ${secs(slowest)}`;
      } finally {
        for (const s of sockets) s.destroy();
      }
    },
  };
}

export function tombstones(sizes: HostileSizes): Attack {
  return {
    name: "tombstones",
    what: `${sizes.tombstones} deleted nodes (planted through sync) before the live ones, then ` +
      `${sizes.listRequests} GET /v1/nodes?limit=1`,
    async prepare(ctx) {
      const actor = randomHex64();
      const base = Date.now() - 60_000;
      // Souls that sort before every live one, so that a listing must pass them all.
      const planted = await plantThroughSync(ctx, sizes.tombstones, (i) => ({
        soul: `0tomb/${String(i).padStart(7, "0")}`,
        field: "v",
        value: null,
        state: formatHlc(base + (i >>> 16), i & 0xffff),
        actor,
      }), "zz-tomb-marker");
      ctx.log(`tombstones: ${planted}`);
    },
    async run(ctx) {
      let slowest = 0, total = 0;
      const answers = new Set<string>();
      for (let i = 0; i < sizes.listRequests; i++) {
        const r = await request(ctx.victim, "GET", "/v1/nodes?limit=1");
        slowest = Math.max(slowest, r.ms);
        total += r.ms;
        answers.add(answer(r));
        await sleep(100);
      }
      return `${sizes.listRequests} listings answered ${[...answers].join("/")}, mean ` +
        `${secs(total / sizes.listRequests)}, slowest ${secs(slowest)}`;
    },
  };
}
