/**
 * A growable output buffer: the one place that grows byte buffers for the
 * encoders (MessagePack, journal frames, node bodies).
 *
 * @module
 */

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
