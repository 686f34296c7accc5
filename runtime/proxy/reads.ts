// Socket reads into one shared buffer.
//
// By default Node allocates a fresh 64 KiB buffer for every read and runs each chunk through the Readable stream
// machinery ('data' events, a nextTick per read). A proxy reads twice per request, so that was a measurable share
// of its CPU per request. Node's `onread` option instead reads into a buffer we provide and calls us directly.
// The one buffer (the arena) is shared by every socket of the process, so the rule for its users is:
// bytes of a read are valid only until the callback returns. Whatever must outlive it is copied with `own()`,
// and so is whatever is handed to socket.write(), which may keep a reference until the kernel takes the bytes.
import net from 'node:net';

const ARENA = Buffer.allocUnsafe(64 * 1024);

/** True when `b` is a view of the shared read buffer. */
export function inArena(b: Buffer): boolean {
  return b.buffer === ARENA.buffer;
}

/** `b`, or a copy of it when it is a view of the shared read buffer. */
export function own(b: Buffer): Buffer {
  return b.buffer === ARENA.buffer ? Buffer.from(b) : b;
}

export type OnBytes = (d: Buffer) => void;

// The clock, read once per read callback: a callback's work takes microseconds, and a proxy otherwise reads the
// clock several times per request. Outside a read callback clock() is Date.now().
let readTime = 0;

/** Milliseconds since the epoch, as Date.now(); during a read callback, the time that callback started. */
export function clock(): number {
  return readTime || Date.now();
}

/** Calls fn(d) with the clock read once for it. */
function deliver(fn: OnBytes, d: Buffer): void {
  readTime = Date.now();
  try {
    fn(d);
  } finally {
    readTime = 0;
  }
}

/** Options for net.connect(): the connection reads into the arena and hands each read to `fn`. */
export function connectReads(fn: OnBytes): net.OnReadOpts {
  return {
    buffer: ARENA,
    callback: (n: number) => {
      deliver(fn, ARENA.subarray(0, n));
      return true; // false would pause the socket: flow control is done with pause() and resume()
    },
  };
}

// An accepted socket cannot be given `onread` by net.Server; the same three slots are set on it by hand.
// They are found by their description; when a Node version does not have them, 'data' events are used.
interface Slots {
  buffer: symbol;
  callback: symbol;
  gen: symbol;
}
let slots: Slots | null | undefined;

function findSlots(sock: net.Socket): Slots | null {
  const syms = Object.getOwnPropertySymbols(sock);
  const by = (d: string) => syms.find((s) => s.description === d);
  const buffer = by('kBuffer');
  const callback = by('kBufferCb');
  const gen = by('kBufferGen');
  const handle = (sock as unknown as { _handle?: { useUserBuffer?: unknown } })._handle;
  if (!buffer || !callback || !gen || !handle || typeof handle.useUserBuffer !== 'function') return null;
  return { buffer, callback, gen };
}

/**
 * Hands every read of an accepted (still paused) socket to `fn`, from the arena when this Node allows it,
 * otherwise from 'data' events. Returns true when the arena is used.
 */
export function acceptReads(sock: net.Socket, fn: OnBytes): boolean {
  if (slots === undefined) slots = findSlots(sock);
  const handle = (sock as unknown as { _handle?: { useUserBuffer?: (b: Buffer) => void; reading?: boolean } })._handle;
  if (slots && handle && typeof handle.useUserBuffer === 'function' && !handle.reading) {
    const s = sock as unknown as Record<symbol, unknown>;
    s[slots.buffer] = ARENA;
    s[slots.callback] = (n: number) => deliver(fn, ARENA.subarray(0, n));
    s[slots.gen] = null;
    handle.useUserBuffer(ARENA);
    return true;
  }
  dataReads(sock, fn);
  return false;
}

/** Hands every read of a socket to `fn` from its 'data' events (a TLS socket's, decrypted). */
export function dataReads(sock: net.Socket, fn: OnBytes): void {
  sock.on('data', (d: Buffer) => deliver(fn, d));
}
