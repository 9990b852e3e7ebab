/** core/names.ts: the table of recent ASCII names gives the right string for any bytes, whatever collides. */
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import fc from "fast-check";
import { NameTable } from "../core/names.ts";
import { fcParams } from "./_seed.ts";

const bytesOf = (s: string): Uint8Array => new TextEncoder().encode(s);

describe("NameTable", () => {
  it("decodes ASCII names right through a table small enough that they collide", () => {
    const names = new NameTable(2);
    fc.assert(
      fc.property(fc.array(fc.string({ unit: "binary-ascii", maxLength: 6 }), { maxLength: 30 }), (list) => {
        for (const s of [...list, ...list]) {
          const b = bytesOf(`..${s}..`);
          assert.equal(names.ascii(b, 2, b.length - 4), s);
        }
      }),
      fcParams(2_000),
    );
  });

  it("returns the same string for a name seen before, undefined for non-ASCII bytes", () => {
    const names = new NameTable(64);
    const b = bytesOf("name name é");
    const first = names.ascii(b, 0, 4);
    assert.equal(first, "name");
    assert.equal(names.ascii(b, 5, 4), first);
    assert.equal(names.ascii(b, 10, 2), undefined);
    assert.throws(() => new NameTable(3), RangeError);
  });

  it("enters a name only once its check passed", () => {
    const names = new NameTable(64);
    const b = bytesOf("bad");
    let checks = 0;
    const check = (s: string) => {
      checks++;
      if (s === "bad") throw new RangeError("bad name");
    };
    assert.throws(() => names.ascii(b, 0, 3, check), /bad name/);
    assert.throws(() => names.ascii(b, 0, 3, check), /bad name/); // not entered: checked again
    assert.equal(checks, 2);
    const ok = bytesOf("ok");
    names.ascii(ok, 0, 2, check);
    names.ascii(ok, 0, 2, check);
    assert.equal(checks, 3, "a name in the table is not checked again");
  });
});
