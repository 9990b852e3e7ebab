/**
 * The hybrid logical clock's formatting and word forms: states as 16 hex
 * digits, as two 32-bit words and as 8 bytes must all say the same thing.
 */
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import fc from "fast-check";
import { Clock, formatHlc, hlcFromWords, hlcWords, isLowerHex16 } from "../core/clock.ts";
import { bytesToHex64, hex64ToBytes } from "../core/op.ts";
import { fcParams } from "./_seed.ts";

const word = fc.integer({ min: 0, max: 0xffffffff });
/** Words at the edges (0, all ones, single digits) as often as random ones. */
const edgeWord = fc.oneof(
  word,
  fc.constantFrom(0, 1, 0xf, 0x10, 0xffff, 0x10000, 0x7fffffff, 0x80000000, 0xffffffff),
);

/** The digits written the slow, obvious way. */
const reference = (h: number, l: number): string =>
  h.toString(16).padStart(8, "0") + l.toString(16).padStart(8, "0");

describe("clock", () => {
  it("hlcFromWords writes both words as 16 lowercase hex digits, and hlcWords reads them back", () => {
    fc.assert(
      fc.property(edgeWord, edgeWord, (h, l) => {
        const s = hlcFromWords(h, l);
        assert.equal(s, reference(h, l));
        assert.deepEqual(hlcWords(s), [h, l]);
      }),
      fcParams(2_000),
    );
  });

  it("a state's words put ms in the top 48 bits and the counter in the low 16", () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 0, max: 2 ** 48 - 1 }),
        fc.integer({ min: 0, max: 0xffff }),
        (ms, counter) => {
          const [h, l] = hlcWords(formatHlc(ms, counter));
          assert.equal(hlcFromWords(h, l), formatHlc(ms, counter));
          assert.equal(h * 0x10000 + (l >>> 16), ms);
          assert.equal(l & 0xffff, counter);
        },
      ),
      fcParams(2_000),
    );
  });

  it("bytesToHex64 writes 8 bytes as hex64ToBytes reads them", () => {
    fc.assert(
      fc.property(fc.uint8Array({ minLength: 8, maxLength: 8 }), (b) => {
        const s = bytesToHex64(b);
        assert.equal(s, Array.from(b, (x) => x.toString(16).padStart(2, "0")).join(""));
        assert.deepEqual(hex64ToBytes(s), b);
      }),
      fcParams(2_000),
    );
  });

  it("isPast compares the latest state with a state's words, as string order would", () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 0, max: 2 ** 40 }),
        fc.integer({ min: 0, max: 0xffff }),
        edgeWord,
        edgeWord,
        (ms, counter, h, l) => {
          const clock = new Clock({ now: () => 0, last: formatHlc(ms, counter) });
          assert.equal(clock.isPast(h, l), clock.last > hlcFromWords(h, l));
          const [lh, ll] = clock.lastWords;
          assert.equal(clock.isPast(lh, ll), false, "not past itself");
          if (ll > 0) assert.equal(clock.isPast(lh, ll - 1), true);
        },
      ),
      fcParams(2_000),
    );
  });
});

describe("isLowerHex16", () => {
  it("accepts exactly what /^[0-9a-f]{16}$/ accepts", () => {
    const re = /^[0-9a-f]{16}$/;
    const hexish = fc.string({
      unit: fc.constantFrom(..."0123456789abcdefABCDEF/:`g@G \u0660"),
      minLength: 14,
      maxLength: 18,
    });
    fc.assert(
      fc.property(fc.oneof(hexish, fc.string(), fc.anything()), (s) => {
        assert.equal(
          isLowerHex16(s),
          typeof s === "string" && re.test(s),
          String(typeof s === "string" ? s : typeof s),
        );
      }),
      fcParams(20_000),
    );
  });
});
