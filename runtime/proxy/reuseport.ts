// One listening socket per worker (SO_REUSEPORT), opened by the main thread and handed to the worker thread.
//
// Why: workers that share one listening socket take new connections in bursts (whichever worker
// wakes first accepts a run of them), so one worker ends up with most of the keep-alive connections
// and the other idles. With a socket each in one SO_REUSEPORT group the kernel spreads connections
// over the workers by address hash. Node before 22.12 cannot set SO_REUSEPORT, hence the small addon
// (native/reuseport.c, built next to the bundle as proxy-linux-<arch>.node).
//
// Who opens: the main thread, which never accepts on these sockets: it passes the descriptor to the
// worker thread, whose server listens on it (the descriptor is the process's, so nothing travels but
// its number) and closes it when it stops listening.
//
// Without the addon (a build without a C compiler) the proxy runs one worker.
import { existsSync } from 'node:fs';
import net from 'node:net';
import dns from 'node:dns/promises';
import { arch } from 'node:os';
import { join } from 'node:path';

interface Addon {
  listen(host: string, port: number, backlog: number): number;
  probe(host: string, port: number): void;
  /** The CPUs this thread may run on. */
  cpus(): number[];
  /** Restricts this thread to these CPUs. */
  pin(cpus: number[]): void;
  /** Names this thread (what top -H and /proc/<pid>/task/<tid>/comm show). */
  nameThread(name: string): void;
}

let addon: Addon | null | undefined;

/** The addon from next to the bundle (or HASETUP_PROXY_NATIVE), null when there is none for this machine. */
export function reusePortAddon(): Addon | null {
  if (addon !== undefined) return addon;
  addon = null;
  if (process.platform !== 'linux') return addon;
  const name = `proxy-linux-${arch()}.node`;
  // HASETUP_PROXY_NATIVE names the file to load instead; a name that does not exist turns the addon off
  const file = process.env.HASETUP_PROXY_NATIVE || (typeof __dirname === 'string' ? join(__dirname, name) : '');
  if (!file || !existsSync(file)) return addon;
  const m = { exports: {} as Addon };
  process.dlopen(m, file);
  addon = m.exports;
  return addon;
}

async function literal(host: string): Promise<string> {
  if (net.isIP(host)) return host;
  return (await dns.lookup(host)).address;
}

/**
 * Opens addresses for workers. The first socket of an address is preceded by a probe bind without
 * SO_REUSEPORT: an address that somebody else holds fails as it would without the addon, instead of
 * joining their group and sharing their traffic.
 */
export class ReusePortOpener {
  private probed = new Map<string, Promise<string>>();
  constructor(private native: Addon) {}

  /** A listening socket of its own for one worker: its file descriptor (the worker's server listens on it). */
  async open(host: string, port: number, backlog: number): Promise<number> {
    const key = `${host}:${port}`;
    let ip = this.probed.get(key);
    if (!ip) {
      ip = literal(host).then((a) => {
        this.native.probe(a, port);
        return a;
      });
      this.probed.set(key, ip);
      ip.catch(() => this.probed.delete(key));
    }
    return this.native.listen(await ip, port, backlog);
  }

  /** Addresses no longer in the configuration are probed again when they come back. */
  keepOnly(keys: Set<string>): void {
    for (const k of this.probed.keys()) if (!keys.has(k)) this.probed.delete(k);
  }
}
