// SHA-256 padding: the final one or two blocks of a message (its last bytes,
// 0x80, zeros, the bit length), written to scratch so that the scalar and the
// four-lane compressions read whole blocks only.

/** Padded final blocks: 2 blocks for each of 4 lanes. */
export const TAIL: usize = memory.data(4 * 128, 16);

/** Number of 64-byte blocks of a padded message of `len` bytes. */
export function blocksOf(len: u32): u32 {
  return (len + 72) >>> 6;
}

/**
 * Writes the final (padded) block(s) of a message to `tail`: the `rest`
 * (< 64) bytes at `p` after the last whole block, 0x80, zeros and the
 * message length `bits`. Returns the number of tail blocks (1 or 2).
 */
export function padTail(p: usize, rest: u32, bits: u64, tail: usize): u32 {
  const blocks: u32 = rest < 56 ? 1 : 2;
  // Explicit stores: V8 compiles memory.fill/copy as calls into the runtime,
  // which would cost more than the padding itself.
  const bytes = <usize> blocks << 6;
  for (let o: usize = 0; o < bytes; o += 8) store<u64>(tail + o, 0);
  let o: usize = 0;
  for (; o + 8 <= <usize> rest; o += 8) store<u64>(tail + o, load<u64>(p + o));
  for (; o < <usize> rest; o++) store<u8>(tail + o, load<u8>(p + o));
  store<u8>(tail + rest, 0x80);
  store<u64>(tail + (<usize> blocks << 6) - 8, bswap<u64>(bits));
  return blocks;
}
