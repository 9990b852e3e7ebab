/**
 * Reading the tools' results: the JUnit reports of Deno and Bun, counted the same way (one result
 * per it/test callback, as in Chromium), and the errors outside any test that only appear in the
 * tools' output (a module that fails to load, a failing hook).
 *
 * @module
 */

function unescapeXml(s) {
  return s.replace(/&(#x[0-9a-f]+|#\d+|lt|gt|amp|quot|apos);/gi, (_, e) => {
    if (e[0] === "#") {
      return String.fromCodePoint(e[1] === "x" || e[1] === "X" ? parseInt(e.slice(2), 16) : +e.slice(1));
    }
    return { lt: "<", gt: ">", amp: "&", quot: '"', apos: "'" }[e.toLowerCase()];
  });
}

function attrs(s) {
  const out = {};
  for (const m of s.matchAll(/([\w:.-]+)="([^"]*)"/g)) out[m[1]] = unescapeXml(m[2]);
  return out;
}

/**
 * Test cases of a JUnit file, in document order, each with the names of the <testsuite>s that
 * enclose it (Bun nests describe blocks as testsuites; Deno writes flat suites).
 */
export function parseJUnit(xml) {
  const cases = [];
  const suites = [];
  const re =
    /<testsuite\b((?:\s+[\w:.-]+="[^"]*")*)\s*(\/?)>|<\/testsuite>|<testcase\b((?:\s+[\w:.-]+="[^"]*")*)\s*(?:\/>|>([\s\S]*?)<\/testcase>)/g;
  for (const m of xml.matchAll(re)) {
    if (m[0].startsWith("</testsuite")) suites.pop();
    else if (m[0].startsWith("<testsuite")) {
      if (!m[2]) suites.push(attrs(m[1]));
    } else {
      const a = attrs(m[3]);
      const body = m[4] ?? "";
      const fail = body.match(/<(failure|error)\b((?:\s+[\w:.-]+="[^"]*")*)\s*(?:\/>|>([\s\S]*?)<\/\1>)/);
      const failure = fail
        ? { message: attrs(fail[2]).message ?? "", text: unescapeXml(fail[3] ?? "").trim() }
        : null;
      cases.push({
        name: a.name ?? "",
        classname: a.classname ?? "",
        file: a.file ?? "",
        suites: suites.map((s) => s.name ?? ""),
        failure,
        skipped: /<skipped\b/.test(body),
      });
    }
  }
  return cases;
}

/**
 * Deno reports describe blocks, it/test callbacks and t.test subtests all as test cases with
 * full names "a > b > c". To count like Bun and the browser (one per it/test callback), leave
 * out t.test subtests (steps whose classname is the test file: describe/it steps are registered
 * from Deno's internal ext:deno_node/testing.ts) and count only leaves.
 */
export function tallyDeno(cases, tally) {
  const isSubtest = (c) => c.name.includes(" > ") && !c.classname.startsWith("ext:");
  const subtests = cases.filter(isSubtest);
  const kept = cases.filter((c) => !isSubtest(c));
  const parents = new Set();
  for (const c of kept) {
    const parts = c.name.split(" > ");
    for (let i = 1; i < parts.length; i++) parents.add(parts.slice(0, i).join(" > "));
  }
  const stepsFailed = /^\d+ test steps? failed/;
  // Steps carry no file name; take it from the top-level test they belong to.
  const fileOf = new Map();
  for (const c of kept) {
    if (!c.name.includes(" > ") && !c.classname.startsWith("ext:") && !fileOf.has(c.name)) {
      fileOf.set(c.name, c.classname.replace(/^\.\//, ""));
    }
  }
  for (const c of kept) {
    const isLeaf = !parents.has(c.name);
    if (!isLeaf) {
      // A container failing for its own reason (a hook) rather than because a child failed.
      if (c.failure && !stepsFailed.test(c.failure.message)) {
        tally.failed++;
        tally.failures.push({
          name: `${c.name} (hook or describe callback)`,
          message: c.failure.text || c.failure.message,
          file: fileOf.get(c.name.split(" > ")[0]) ?? "",
        });
      }
      continue;
    }
    if (c.skipped) tally.skipped++;
    else if (c.failure) {
      tally.failed++;
      let message = c.failure.text || c.failure.message;
      if (stepsFailed.test(c.failure.message)) {
        const subs = subtests.filter((s) =>
          s.failure && s.name.startsWith(c.name + " > ") && !stepsFailed.test(s.failure.message)
        );
        if (subs.length) {
          message = subs.map((s) => `subtest "${s.name}": ${s.failure.text || s.failure.message}`).join("\n");
        }
      }
      tally.failures.push({ name: c.name, message, file: fileOf.get(c.name.split(" > ")[0]) ?? "" });
    } else tally.passed++;
  }
}

/** Bun reports one test case per it/test callback (t.test subtests are not reported). */
export function tallyBun(cases, tally) {
  for (const c of cases) {
    if (c.skipped) tally.skipped++;
    else if (c.failure) {
      tally.failed++;
      const name = [...c.suites.slice(1), c.name].join(" > ");
      tally.failures.push({ name, file: c.file, message: c.failure.text || c.failure.message });
    } else tally.passed++;
  }
}

/** Deno: errors outside any test ("./x.test.ts (uncaught error)") are not in the JUnit file. */
export function denoUncaught(out) {
  const errors = [];
  const i = out.lastIndexOf("\n ERRORS \n");
  const j = out.lastIndexOf("\n FAILURES \n");
  if (j < 0) return errors;
  const failuresBlock = out.slice(j).split("\n");
  for (const line of failuresBlock) {
    const m = line.match(/^(\S.*) \(uncaught error\)$/);
    if (!m) continue;
    let message = "";
    if (i >= 0) {
      const errs = out.slice(i, j);
      const k = errs.indexOf(`${m[1]} (uncaught error)`);
      if (k >= 0) {
        message =
          errs.slice(k).split("\n").slice(1).join("\n").split(/\n\n(?=\S.* \(uncaught error\)|\S.* => )/)[0];
      }
    }
    errors.push({ name: `${m[1]} (uncaught error)`, message: message.trim() });
  }
  return errors;
}

/** Bun: "# Unhandled error between tests" blocks (module load errors, hook failures). */
export function bunBetweenTests(out) {
  const errors = [];
  const lines = out.split("\n");
  let file = "";
  for (let i = 0; i < lines.length; i++) {
    const fm = lines[i].match(/^(\S.*\.test\.[cm]?[jt]sx?):$/);
    if (fm) file = fm[1];
    if (lines[i].trim() !== "# Unhandled error between tests") continue;
    const body = [];
    let j = i + 2;
    for (; j < lines.length && !/^-{10,}$/.test(lines[j].trim()); j++) body.push(lines[j]);
    errors.push({ name: `${file || "?"} (error between tests)`, message: body.join("\n") });
    i = j;
  }
  return errors;
}
