/**
 * A stand-in for one side of a libp2p stream, as `net/channel.ts` sees it:
 * the test decides how the remote's bytes are chunked (each `deliver` is one
 * `message` event, as libp2p dispatches a transport message) and reads what
 * the channel sent, byte for byte.
 */
import type { Stream } from "@libp2p/interface";

const noop = Object.assign(() => {}, { error: () => {}, trace: () => {}, newScope: () => noop });

export class MessageStream extends EventTarget {
  /** What the channel sent, one entry per `send`, copied. */
  readonly sent: Uint8Array[] = [];
  /** The error the channel aborted the stream with. */
  aborted: Error | undefined;
  closed = false;
  remoteWriteStatus: "writable" | "closed" = "writable";
  readStatus: "readable" | "closed" = "readable";
  writeStatus: "writable" | "closed" = "writable";
  readonly readBufferLength = 0;
  readonly log = noop;

  /** This object as the libp2p `Stream` the channel takes. */
  get stream(): Stream {
    return this as unknown as Stream;
  }

  /** The remote sends `chunk`: one `message` event, dispatched synchronously. */
  deliver(chunk: Uint8Array): void {
    if (this.aborted || this.remoteWriteStatus === "closed") return;
    this.dispatchEvent(Object.assign(new Event("message"), { data: chunk }));
  }

  /** The remote closes its writing side. */
  endRemote(): void {
    if (this.aborted || this.remoteWriteStatus === "closed") return;
    this.remoteWriteStatus = "closed";
    this.dispatchEvent(new Event("remoteCloseWrite"));
  }

  /** Every byte the channel sent, joined. */
  bytesSent(): Uint8Array {
    const out = new Uint8Array(this.sent.reduce((n, b) => n + b.length, 0));
    let at = 0;
    for (const b of this.sent) at += (out.set(b, at), b.length);
    return out;
  }

  send(data: Uint8Array | { subarray(): Uint8Array }): boolean {
    this.sent.push((data instanceof Uint8Array ? data : data.subarray()).slice());
    return true;
  }

  abort(error: Error): void {
    if (this.aborted) return;
    this.aborted = error;
    this.remoteWriteStatus = this.readStatus = this.writeStatus = "closed";
    this.dispatchEvent(Object.assign(new Event("close"), { error }));
  }

  close(): Promise<void> {
    this.closed = true;
    this.writeStatus = "closed";
    return Promise.resolve();
  }

  closeRead(): Promise<void> {
    return Promise.resolve();
  }

  push(): void {}
  unshift(): void {}
}
