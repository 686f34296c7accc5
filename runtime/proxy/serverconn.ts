// A connection to a server: its socket, the session that owns it, and its place in the server's idle pool.
import type net from 'node:net';
import type { OnBytes } from './reads.ts';

/** What a server connection reports to the HTTP session that owns it. */
export interface ConnOwner {
  onSrvData(d: Buffer): void;
  onSrvEnd(): void;
  onSrvError(e: Error): void;
  onSrvTimeout(): void;
  onSrvDrain(): void;
}

/** A connection to a server, reused between requests in keep-alive mode. */
export class ServerConn {
  owner: ConnOwner | null = null;
  idleSince = 0;
  timeoutSet = -1; // the inactivity timeout currently armed on the socket
  reused = false;
  /** Where the connection's reads go: its HTTP session, or a TCP session's pipe. */
  onBytes: OnBytes = (d) => {
    if (!this.owner) this.kill();
    else this.owner.onSrvData(d);
  };
  constructor(
    public sock: net.Socket,
    /** the idle pool of its server (balance.ts's Server.idle), where it waits between requests */
    readonly pool: ServerConn[],
  ) {
    sock.on('end', () => (this.owner ? this.owner.onSrvEnd() : this.kill()));
    sock.on('error', (e) => (this.owner ? this.owner.onSrvError(e) : this.kill()));
    sock.on('close', () => this.owner?.onSrvError(new Error('closed')));
    sock.on('timeout', () => this.owner?.onSrvTimeout());
    sock.on('drain', () => this.owner?.onSrvDrain());
  }
  kill(): void {
    const i = this.pool.indexOf(this);
    if (i >= 0) this.pool.splice(i, 1);
    this.owner = null;
    this.sock.destroy();
  }
}
