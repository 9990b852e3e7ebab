/**
 * Static check "import cycles": no module of the repository may import itself through others.
 * A cycle makes load order decide which binding is still undefined, and it ties layers together
 * that should be drawn one above the other (issue 13 broke mod.ts → net/join.ts → net/network.ts →
 * net/serve.ts → mod.ts).
 *
 * Every import counts: static value imports, `import type`/`export type` and dynamic `import()` of a
 * literal path. Type-only and dynamic imports cannot make a load-order cycle, but they are the same
 * dependency between modules: the cycle of issue 13 was made of one dynamic import (mod.ts →
 * net/join.ts) and one type import (net/network.ts → net/serve.ts, the network's contract kept in
 * its consumer), and a check of value imports alone would not have seen it. A cycle is reported as
 * the shortest path from a module of the cycle back to itself, each step marked with its kind when
 * it is not a value import.
 *
 * @module
 */

import { importGraph, listModules } from "./source_scan.mjs";

/** Strongly connected components (Tarjan) of `graph` (node → successor nodes) with a cycle in them. */
export function cyclicComponents(graph) {
  const index = new Map();
  const low = new Map();
  const stack = [];
  const onStack = new Set();
  const components = [];
  let next = 0;
  const visit = (v) => {
    index.set(v, next);
    low.set(v, next);
    next++;
    stack.push(v);
    onStack.add(v);
    for (const w of graph.get(v) ?? []) {
      if (!index.has(w)) {
        visit(w);
        low.set(v, Math.min(low.get(v), low.get(w)));
      } else if (onStack.has(w)) low.set(v, Math.min(low.get(v), index.get(w)));
    }
    if (low.get(v) !== index.get(v)) return;
    const component = [];
    let w;
    do {
      w = stack.pop();
      onStack.delete(w);
      component.push(w);
    } while (w !== v);
    if (component.length > 1 || (graph.get(v) ?? []).includes(v)) components.push(component.sort());
  };
  for (const v of [...graph.keys()].sort()) if (!index.has(v)) visit(v);
  return components.sort((a, b) => a[0].localeCompare(b[0]));
}

/** The shortest cycle through `start` that stays inside `members` (breadth-first), as a closed path. */
export function shortestCycle(graph, start, members) {
  const inside = new Set(members);
  const parent = new Map();
  const queue = [start];
  for (let i = 0; i < queue.length; i++) {
    const v = queue[i];
    for (const w of graph.get(v) ?? []) {
      if (!inside.has(w)) continue;
      if (w === start) {
        const path = [start];
        for (let u = v; u !== start; u = parent.get(u)) path.splice(1, 0, u);
        return [...path, start];
      }
      if (!parent.has(w)) {
        parent.set(w, v);
        queue.push(w);
      }
    }
  }
  return [start, start];
}

/** The import cycles among the modules of `root`, one line each ("a.ts → b.ts →(type) a.ts"). */
export function checkCycles(root) {
  const imports = importGraph(root, listModules(root, [""]));
  const graph = new Map();
  const kinds = new Map(); // "from\0to" → kind of the strongest import ("value" over "dynamic" over "type")
  const rank = { value: 0, dynamic: 1, type: 2 };
  for (const [file, edges] of imports) {
    graph.set(file, [...new Set(edges.map((e) => e.to))]);
    for (const e of edges) {
      const key = `${file}\0${e.to}`;
      if (!kinds.has(key) || rank[e.kind] < rank[kinds.get(key)]) kinds.set(key, e.kind);
    }
  }
  return cyclicComponents(graph).map((component) => {
    const cycle = shortestCycle(graph, component[0], component);
    let text = cycle[0];
    for (let i = 1; i < cycle.length; i++) {
      const kind = kinds.get(`${cycle[i - 1]}\0${cycle[i]}`);
      text += ` →${kind === "value" ? "" : `(${kind})`} ${cycle[i]}`;
    }
    const rest = component.length + 1 > cycle.length
      ? ` (${component.length} modules in the knot: ${component.join(", ")})`
      : "";
    return `import cycle: ${text}${rest}`;
  });
}
