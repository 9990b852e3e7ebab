/**
 * Stage "bun": one `bun test` over the selected files, counted from its JUnit report.
 *
 * @module
 */

import fs from "node:fs";
import path from "node:path";
import { STAGE_TIMEOUT_MS, TEST_TIMEOUT_MS } from "./config.mjs";
import { header, plural } from "./output.mjs";
import { runCommand } from "./process.mjs";
import { bunBetweenTests, parseJUnit, tallyBun } from "./junit.mjs";
import { applyExit, finishStage, newTally } from "./summary.mjs";

export async function stageBun(bun, files, tmp) {
  header(`bun test: ${plural(files.length, "file")}`);
  const tally = newTally("bun");
  if (!files.length) return finishStage(tally, 0);
  const xml = path.join(tmp, "bun.xml");
  const args = [
    "test",
    "--reporter=junit",
    `--reporter-outfile=${xml}`,
    `--timeout=${TEST_TIMEOUT_MS}`,
    ...files.map((f) => `./${f}`),
  ];
  const r = await runCommand(bun, args, { timeoutMs: STAGE_TIMEOUT_MS });
  const hasReport = fs.existsSync(xml);
  if (hasReport) tallyBun(parseJUnit(fs.readFileSync(xml, "utf8")), tally);
  for (const e of bunBetweenTests(r.out)) {
    tally.failed++;
    tally.failures.push(e);
  }
  applyExit(tally, r, hasReport);
  return finishStage(tally, r.ms);
}
