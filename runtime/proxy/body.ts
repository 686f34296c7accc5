// A message body on its way through the proxy, in either direction (the request's to the server, the response's
// to the client): where it ends (its framing), the bytes of it that go on, and the backpressure between the two
// sockets.
import type net from 'node:net';
import { ChunkedTracker } from './http.ts';
import { own } from './reads.ts';
import { send } from './writes.ts';

/** none: no body; cl: Content-Length; chunked; close: until the sender closes (responses only). */
export type Framing = 'none' | 'cl' | 'chunked' | 'close';

export class BodyForwarder {
  framing: Framing = 'none';
  /** Content-Length bytes still to come */
  left = 0;
  private chunks: ChunkedTracker | null = null;
  /** the message's head when it leaves with the first bytes of the body, in one write */
  head: Buffer | null = null;

  /** A new message's body: its framing, and its length for `cl`. */
  start(framing: Framing, length = 0): void {
    this.framing = framing;
    this.left = framing === 'cl' ? length : 0;
    this.chunks = framing === 'chunked' ? new ChunkedTracker() : null;
    this.head = null;
  }

  /** The whole body has gone through (never, for a body that ends with the connection). */
  get done(): boolean {
    switch (this.framing) {
      case 'none':
        return true;
      case 'cl':
        return this.left === 0;
      case 'chunked':
        return this.chunks!.done;
      case 'close':
        return false;
    }
  }

  /**
   * Sends what of `d` belongs to the body to `to` (after the head waiting, in the same write) and pauses `from`
   * while `to` cannot take more (the 'drain' of `to` resumes it). Returns how many bytes of `d` were the body's:
   * the rest is the next message. Throws HttpError when a chunked body is badly framed.
   */
  forward(d: Buffer, to: net.Socket, from: net.Socket): number {
    let n = d.length;
    if (this.framing === 'cl') {
      n = Math.min(this.left, d.length);
      this.left -= n;
    } else if (this.framing === 'chunked') n = this.chunks!.feed(d);
    else if (this.framing === 'none') n = 0;
    const body = n === d.length ? d : d.subarray(0, n);
    const head = this.head;
    let ok = true;
    if (head) {
      this.head = null;
      ok = send(to, n > 0 ? Buffer.concat([head, body], head.length + n) : head);
    } else if (n > 0) ok = send(to, own(body));
    if (!ok && !this.done) from.pause();
    return n;
  }
}
