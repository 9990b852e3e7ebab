/**
 * The transport a sync session runs over: a bidirectional, message-framed
 * {@link SyncChannel} (a libp2p stream adapter in `net/network.ts`), and
 * {@link channelPair}, two connected in-process channels for tests, workers
 * and local replicas.
 *
 * @module
 */

/** A bidirectional, message-framed transport (a libp2p stream adapter, or an in-process pair). */
export interface SyncChannel {
  send(frame: Uint8Array): Promise<void>;
  readonly frames: AsyncIterable<Uint8Array>;
  close(): void;
}

/**
 * Two connected in-process channels (for tests, workers and local replicas):
 * what one sends, the other's `frames` yields, in order. `close` ends both
 * directions of that side once queued frames are read.
 */
export function channelPair(): [SyncChannel, SyncChannel] {
  const a = new Inbox(), b = new Inbox();
  const side = (inbox: Inbox, peer: Inbox): SyncChannel => ({
    send(frame: Uint8Array): Promise<void> {
      if (peer.closed) return Promise.reject(new Error("Cannot send: the sync channel is closed"));
      peer.push(frame);
      return Promise.resolve();
    },
    frames: { [Symbol.asyncIterator]: () => inbox.iterator() },
    close(): void {
      inbox.close();
      peer.close();
    },
  });
  return [side(a, b), side(b, a)];
}

class Inbox {
  #items: Uint8Array[] = [];
  #waiter: ((r: IteratorResult<Uint8Array>) => void) | undefined;
  closed = false;

  push(frame: Uint8Array): void {
    if (this.#waiter) {
      const w = this.#waiter;
      this.#waiter = undefined;
      w({ done: false, value: frame });
    } else this.#items.push(frame);
  }

  close(): void {
    this.closed = true;
    if (this.#waiter && this.#items.length === 0) {
      const w = this.#waiter;
      this.#waiter = undefined;
      w({ done: true, value: undefined });
    }
  }

  iterator(): AsyncIterator<Uint8Array> {
    return {
      next: (): Promise<IteratorResult<Uint8Array>> => {
        const item = this.#items.shift();
        if (item) return Promise.resolve({ done: false, value: item });
        if (this.closed) return Promise.resolve({ done: true, value: undefined });
        return new Promise((resolve) => (this.#waiter = resolve));
      },
      return: (): Promise<IteratorResult<Uint8Array>> => {
        this.close();
        return Promise.resolve({ done: true, value: undefined });
      },
    };
  }
}
