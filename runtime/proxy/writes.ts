// Socket writes without the Writable stream machinery.
//
// socket.write() runs every chunk through node:stream's Writable (state checks, a write request object, a
// callback queued with process.nextTick after each write) before the same native call that writes to the
// kernel. A proxy writes twice per request, so that was a measurable share of its CPU and of its garbage.
// send() makes the native call directly when nothing stands in its way, and otherwise uses socket.write().
//
// The rules are socket.write()'s: the buffer may be kept until the kernel has taken all of it (so it must not be
// a view of the shared read buffer: see reads.ts), and false means "wait for 'drain'". Writes made both ways keep
// their order: send() only writes directly when the Writable holds nothing back, and a write the kernel could not
// take at once is queued by libuv in front of any later one, whichever way that one comes.
import net from 'node:net';
import { getSystemErrorName } from 'node:util';

interface WriteReq {
  handle: unknown;
  oncomplete: (this: WriteReq, status: number) => void;
  async: boolean;
  bytes: number;
  buffer: Buffer | null;
  sock: net.Socket | null;
}

interface StreamBinding {
  WriteWrap: new () => WriteReq;
  streamBaseState: Int32Array;
  kLastWriteWasAsync: number;
}

interface Handle {
  writeBuffer(req: WriteReq, b: Buffer): number;
}

// The binding that node:net itself writes with; null when this Node does not offer it (then socket.write()).
const binding: StreamBinding | null = (() => {
  try {
    const b = (process as unknown as { binding(name: string): Partial<StreamBinding> }).binding('stream_wrap');
    if (typeof b.WriteWrap !== 'function' || !(b.streamBaseState instanceof Int32Array) || typeof b.kLastWriteWasAsync !== 'number')
      return null;
    return b as StreamBinding;
  } catch {
    return null;
  }
})();

// Sockets' direct writes the kernel has not taken in full yet.
const pending = new WeakMap<net.Socket, number>();

function oncomplete(this: WriteReq, status: number): void {
  const sock = this.sock!;
  this.sock = null;
  this.buffer = null;
  const left = (pending.get(sock) ?? 1) - 1;
  if (left > 0) pending.set(sock, left);
  else pending.delete(sock);
  if (sock.destroyed) return;
  if (status < 0) {
    sock.destroy(writeError(status));
    return;
  }
  if (left === 0) sock.emit('drain');
}

function writeError(status: number): NodeJS.ErrnoException {
  const code = getSystemErrorName(status);
  const e: NodeJS.ErrnoException = new Error(`write ${code}`);
  e.errno = status;
  e.code = code;
  e.syscall = 'write';
  return e;
}

// One request object serves every write the kernel takes at once (libuv then never sees it); a write that has
// to wait keeps its object until it completes, and the next write gets a new one.
let spare: WriteReq | null = null;

function newReq(b: StreamBinding): WriteReq {
  const req = new b.WriteWrap();
  req.oncomplete = oncomplete;
  req.async = false;
  req.bytes = 0;
  req.buffer = null;
  req.sock = null;
  return req;
}

/** Writes `b` to `sock` like sock.write(b); see the rules at the top of this file. */
export function send(sock: net.Socket, b: Buffer): boolean {
  const handle = (sock as unknown as { _handle: Handle | null })._handle;
  // (a TLS socket's writes go through its encryption: socket.write())
  if (
    !binding ||
    !handle ||
    (sock as { encrypted?: boolean }).encrypted ||
    sock.connecting ||
    sock.writableLength !== 0 ||
    sock.timeout ||
    sock.destroyed ||
    sock.writableEnded
  )
    return sock.write(b);
  const req = spare ?? newReq(binding);
  spare = null;
  req.handle = handle;
  const err = handle.writeBuffer(req, b);
  if (err !== 0) {
    sock.destroy(writeError(err));
    return false;
  }
  if (binding.streamBaseState[binding.kLastWriteWasAsync] === 0) {
    spare = req;
    return true;
  }
  req.async = true;
  req.buffer = b;
  req.sock = sock;
  pending.set(sock, (pending.get(sock) ?? 0) + 1);
  return false;
}

/** True when direct writes are in use (this Node offers the binding). */
export const direct = binding !== null;
