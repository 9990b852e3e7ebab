/**
 * Soul order shared by every engine: UTF-8 byte order, which is Unicode code
 * point order (SQLite's BINARY collation), not JS's UTF-16 order.
 *
 * @module
 */

/** Compares two strings by code point, like `memcmp` on their UTF-8 bytes. */
export function compareCodePoints(a: string, b: string): number {
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) {
    const x = a.charCodeAt(i), y = b.charCodeAt(i);
    if (x === y) continue;
    // Surrogates (0xD800–0xDFFF) encode code points above 0xFFFF: they sort after 0xE000–0xFFFF.
    const xs = x >= 0xd800 && x <= 0xdfff, ys = y >= 0xd800 && y <= 0xdfff;
    if (xs !== ys) return xs ? (y >= 0xe000 ? 1 : x - y) : (x >= 0xe000 ? -1 : x - y);
    return x - y;
  }
  return a.length - b.length;
}
