/**
 * A growable output buffer: the one place that grows byte buffers for the
 * encoders (MessagePack, journal frames, node bodies).
 *
 * @module
 */

/**
 * Copies `b` into `out` at `at` (which must have room): byte by byte when
 * short, as the usual encoded value is, which beats the call of `set()`.
 */
export function putBytes(out: Uint8Array, at: number, b: Uint8Array): void {
  const n = b.length;
  if (n <= 16) {
    for (let i = 0; i < n; i++) out[at + i] = b[i];
  } else out.set(b, at);
}

/** Bytes written at `pos` into `buf`, which {@link ByteWriter.ensure} grows by doubling. */
export class ByteWriter {
  buf: Uint8Array;
  view: DataView;
  pos = 0;

  constructor(size = 256) {
    this.buf = new Uint8Array(size);
    this.view = new DataView(this.buf.buffer);
  }

  /** Makes room for `n` more bytes at `pos`, at least doubling the buffer when it has to grow. */
  ensure(n: number): void {
    if (this.pos + n <= this.buf.length) return;
    let size = this.buf.length * 2;
    while (size < this.pos + n) size *= 2;
    const next = new Uint8Array(size);
    next.set(this.buf.subarray(0, this.pos));
    this.buf = next;
    this.view = new DataView(next.buffer);
  }
}
