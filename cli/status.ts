/**
 * The commands that describe a replica rather than its data: `status` (of
 * the local database, or of a running node with --url) and `peers` (the
 * connections of a running node, which only a running node has).
 *
 * @module
 */
import { VERSION } from "../version.ts";
import type { OpenedDatabase } from "../mod.ts";
import { type Context, requireDatabase, withLocalDatabase, withNode } from "./context.ts";
import { EXIT_OK } from "./errors.ts";

/** `lattice status`: path, storage, kernels, actor, version, node count and deferred ops. */
export async function status(ctx: Context): Promise<number> {
  if (ctx.url !== undefined) return await remoteStatus(ctx);
  requireDatabase(ctx);
  const s = await withLocalDatabase(ctx, async (db) => {
    const nodes = await db.countNodes();
    return {
      path: ctx.path,
      storage: db.storage,
      kernels: db.kernels.name,
      hashBackend: db.kernels.hashBackend,
      actor: db.actor,
      version: VERSION,
      nodes,
      deferred: db.deferredStatus(),
      identity: (db as OpenedDatabase).identity?.id ?? null,
    };
  });
  if (ctx.json) {
    await ctx.out.line(JSON.stringify(s));
  } else {
    await ctx.out.line(`path:     ${s.path}`);
    await ctx.out.line(`storage:  ${s.storage}`);
    await ctx.out.line(`kernels:  ${s.kernels} (hash: ${s.hashBackend})`);
    await ctx.out.line(`actor:    ${s.actor}`);
    await ctx.out.line(`identity: ${s.identity ?? "-"}`);
    await ctx.out.line(`version:  ${s.version}`);
    await ctx.out.line(`nodes:    ${s.nodes}`);
    await ctx.out.line(`deferred: ${describeDeferred(s.deferred)}`);
  }
  return EXIT_OK;
}

/** One line about the deferred ops: how many wait, when the next is due, how many were refused. */
function describeDeferred(d: { count: number; next: number | null; refused: number } | undefined): string {
  if (d === undefined) return "-";
  const next = d.next === null ? "" : `, next due ${new Date(d.next).toISOString()}`;
  return `${d.count} waiting${next}; ${d.refused} refused from peers`;
}

/** `lattice status --url URL`: the running node's view, with its peers and addresses. */
async function remoteStatus(ctx: Context): Promise<number> {
  const s = await withNode(ctx, (node) => node.status());
  if (ctx.json) {
    await ctx.out.line(JSON.stringify({ url: ctx.url, ...s }));
  } else {
    await ctx.out.line(`url:      ${ctx.url}`);
    await ctx.out.line(`peer id:  ${s.peerId ?? "-"}`);
    await ctx.out.line(`identity: ${s.identity ?? "-"}`);
    await ctx.out.line(`space:    ${s.space}`);
    await ctx.out.line(`peers:    ${s.peers}`);
    await ctx.out.line(`storage:  ${s.storage}`);
    await ctx.out.line(`kernels:  ${s.kernels}`);
    await ctx.out.line(`version:  ${s.version}`);
    await ctx.out.line(`nodes:    ${s.nodes}`);
    await ctx.out.line(`deferred: ${describeDeferred(s.deferred)}`);
    for (const a of s.addrs) await ctx.out.line(`address:  ${a}`);
  }
  return EXIT_OK;
}

/** `lattice peers --url URL`: the peers the node is connected to. */
export async function peers(ctx: Context): Promise<number> {
  const list = await withNode(ctx, (node) => node.peers());
  for (const peer of list) {
    await ctx.out.line(ctx.json ? JSON.stringify(peer) : [peer.id, ...peer.addrs].join(" "));
  }
  return EXIT_OK;
}
