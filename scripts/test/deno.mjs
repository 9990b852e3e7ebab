/**
 * Stage "deno": one `deno test -A` over the selected files, counted from its JUnit report.
 *
 * @module
 */

import fs from "node:fs";
import path from "node:path";
import { STAGE_TIMEOUT_MS } from "./config.mjs";
import { header, plural } from "./output.mjs";
import { runCommand } from "./process.mjs";
import { denoUncaught, parseJUnit, tallyDeno } from "./junit.mjs";
import { applyExit, finishStage, newTally } from "./summary.mjs";

export async function stageDeno(deno, files, tmp, { noCheck }) {
  header(`deno test: ${plural(files.length, "file")}`);
  const tally = newTally("deno");
  if (!files.length) return finishStage(tally, 0);
  const xml = path.join(tmp, "deno.xml");
  const args = ["test", "-A", ...(noCheck ? ["--no-check"] : []), `--junit-path=${xml}`, ...files];
  const r = await runCommand(deno, args, { timeoutMs: STAGE_TIMEOUT_MS });
  const hasReport = fs.existsSync(xml);
  if (hasReport) tallyDeno(parseJUnit(fs.readFileSync(xml, "utf8")), tally);
  for (const e of denoUncaught(r.out)) {
    tally.failed++;
    tally.failures.push(e);
  }
  applyExit(tally, r, hasReport);
  return finishStage(tally, r.ms);
}
