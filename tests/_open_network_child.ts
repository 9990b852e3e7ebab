/**
 * Child process of tests/open_network.test.ts: two `open({ network })`
 * databases converge, then close; the test checks that the process then
 * exits on its own, i.e. closing left no timer, socket or listener holding
 * it open. Prints `converged` and `closed` lines, and as its process exits
 * `exited N ms after closing`. Not a test file.
 */
import process from "node:process";
import { createLogger, open } from "../mod.ts";

const logger = createLogger({ level: "silent" });
const network = { space: "open-network-child", logger };
const a = await open({ storage: "memory", network });
const b = await open({ storage: "memory", network: { ...network, bootstrap: a.network!.addrs() } });
await a.put("x", { v: 1 });
const deadline = Date.now() + 30_000;
while ((await b.get("x"))?.v !== 1) {
  if (Date.now() > deadline) throw new Error("the replicas did not converge in 30 s");
  await new Promise((r) => setTimeout(r, 25));
}
console.log("converged");
await b.close();
await a.close();
const closedAt = performance.now();
process.on("exit", () => console.log(`exited ${Math.round(performance.now() - closedAt)} ms after closing`));
console.log("closed");
