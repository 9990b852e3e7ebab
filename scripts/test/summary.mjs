/**
 * Tallies and summary lines: one tally per runtime (passed, failed, skipped, failures to print),
 * its line (`deno: 12 passed, 0 failed (3.1 s)`) and the run's last line, `N passed, N failed`,
 * which npm test, deno task test and .ci/run rely on.
 *
 * @module
 */

import { dim, green, indent, lastLines, log, red, secs } from "./output.mjs";
import { describeExit } from "./process.mjs";

/** Counts of one runtime's results plus the failures to print. */
export function newTally(label) {
  return { label, passed: 0, failed: 0, skipped: 0, ms: 0, failures: [], notes: [] };
}

export function applyExit(tally, r, hasReport) {
  if (r.timedOut) {
    tally.failed++;
    tally.failures.push({
      name: `${tally.label} timed out after ${secs(r.ms)}`,
      message: lastLines(r.out, 30),
    });
  } else if (r.error || r.code !== 0) {
    if (tally.failed === 0) {
      tally.failed++;
      tally.failures.push({
        name: `${tally.label} failed (${describeExit(r)})${
          hasReport ? "" : " without writing its JUnit report"
        }`,
        message: lastLines(r.out, 40),
      });
    }
  } else if (!hasReport) {
    tally.failed++;
    tally.failures.push({ name: `${tally.label} wrote no JUnit report`, message: lastLines(r.out, 30) });
  }
}

function printFailures(tally) {
  const MAX = 50;
  const real = tally.failures.filter((f) => !f.note).length;
  for (const f of tally.failures.slice(0, MAX)) {
    const where = f.file ? `${f.file} > ` : "";
    log(f.note ? `  ${dim("note")} ${where}${f.name}` : `  ${red("FAIL")} ${where}${f.name}`);
    if (f.message) log(indent(f.message, { pad: "       ", max: 25 }));
  }
  if (tally.failures.length > MAX) log(`  … ${real} failures in all, the first ${MAX} entries shown`);
}

function runtimeLine(t) {
  const skipped = t.skipped ? `, ${t.skipped} skipped` : "";
  const notes = t.notes.length ? ` — ${t.notes.join("; ")}` : "";
  const failed = t.failed ? red(`${t.failed} failed`) : "0 failed";
  return `${t.label}: ${t.passed} passed, ${failed}${skipped} (${secs(t.ms)})${notes}`;
}

export function finishStage(tally, ms) {
  tally.ms = ms;
  printFailures(tally);
  tally.line = runtimeLine(tally);
  log(tally.line);
  return tally;
}

/**
 * Prints the runtime lines, the total and, as the very last line, `N passed, N failed`; returns the
 * exit code (1 when anything failed).
 */
export function printSummary(outcomes, ms) {
  const passed = outcomes.reduce((n, o) => n + o.passed, 0);
  const failed = outcomes.reduce((n, o) => n + o.failed, 0);
  log("");
  for (const o of outcomes) log(o.line);
  const bad = outcomes.filter((o) => o.failed).map((o) => o.label);
  log(
    `total ${secs(ms)}; ${bad.length ? red(`failed: ${bad.join(", ")}`) : green("all stages passed")}`,
  );
  log(`${passed} passed, ${failed} failed`);
  return failed ? 1 : 0;
}
