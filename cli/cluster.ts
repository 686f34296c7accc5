// The cluster as hasetup's commands that act on a running cluster talk to it (failover-test, drain):
// one SSH connection per host, opened again when a fault cut it (an LB whose link went down);
// commands, and watchers that stream a line per event for a bounded time, each line stamped with the
// caller's clock when it arrives.
import type { Host, Inventory } from '../inventory/types.ts';
import { UnreachableError, type ExecResult, type Transport } from './engine/transport.ts';
import { shq } from './engine/shell.ts';

export type Clock = () => number;

export interface Line {
  t: number;
  text: string;
}

export class Cluster {
  private readonly transports = new Map<string, Promise<Transport>>();
  private watchers = 0;
  constructor(
    readonly inv: Inventory,
    private readonly connect: (h: Host) => Promise<Transport>,
    readonly now: Clock,
  ) {}

  host(name: string): Host {
    const h = this.inv.hosts.find((x) => x.name === name);
    if (!h) throw new Error(`no host ${name} in ${this.inv.file}`);
    return h;
  }

  hosts(group: Host['group']): Host[] {
    return this.inv.hosts.filter((h) => h.group === group);
  }

  private transport(h: Host): Promise<Transport> {
    let t = this.transports.get(h.name);
    if (!t) {
      t = this.connect(h);
      t.catch(() => this.transports.delete(h.name));
      this.transports.set(h.name, t);
    }
    return t;
  }

  /**
   * Runs a script as root on a host. A connection that a fault cut before the script was sent is
   * opened once more (a script cut while it ran is not run again).
   */
  async exec(
    host: string,
    script: string,
    opts: { stdin?: string | Buffer; onStdout?: (chunk: string) => void } = {},
  ): Promise<ExecResult> {
    const h = this.host(host);
    for (let attempt = 0; ; attempt++) {
      const t = await this.transport(h);
      try {
        return await t.exec(script, opts.stdin, { onStdout: opts.onStdout });
      } catch (e) {
        this.transports.delete(h.name);
        await t.close().catch(() => {});
        const notSent = e instanceof UnreachableError && /connection lost/.test(e.message);
        if (attempt > 0 || !notSent) throw e;
      }
    }
  }

  /** Like exec, but a non-zero exit is an error naming the host. */
  async sh(host: string, script: string, stdin?: string | Buffer): Promise<string> {
    const r = await this.exec(host, script, { stdin });
    if (r.code !== 0)
      throw new Error(
        `${host}: ${script.split('\n')[0]}: exit ${r.code}: ${(r.stderr || r.stdout).trim().split('\n').slice(-5).join(' / ')}`,
      );
    return r.stdout;
  }

  /**
   * Runs `script` on a host for at most `seconds` (it is wrapped in timeout), calling onLine with
   * each line of its output as it arrives. Resolves when the script ends; a watcher cut off by its
   * host (a link taken down) just ends.
   */
  async watch(host: string, script: string, seconds: number, onLine: (l: Line) => void, signal?: AbortSignal): Promise<void> {
    let buf = '';
    const feed = (chunk: string) => {
      buf += chunk;
      let nl: number;
      while ((nl = buf.indexOf('\n')) >= 0) {
        const text = buf.slice(0, nl);
        buf = buf.slice(nl + 1);
        onLine({ t: this.now(), text });
      }
    };
    // in a session of its own, so that the whole watcher can be ended early (signal)
    const id = `/run/hasetup-watch-${process.pid}-${++this.watchers}`;
    const wrapped = `timeout ${Math.ceil(seconds)} setsid -w sh -c ${shq(`echo $$ > ${id}; ${script}`)}; rm -f ${id}; true`;
    const stop = () => void this.exec(host, `[ -f ${id} ] && kill -- -$(cat ${id}) 2>/dev/null; rm -f ${id}; true`).catch(() => {});
    signal?.addEventListener('abort', stop, { once: true });
    try {
      await this.exec(host, wrapped, { onStdout: feed }).catch(() => undefined);
    } finally {
      signal?.removeEventListener('abort', stop);
    }
  }

  async close(): Promise<void> {
    const all = [...this.transports.values()];
    this.transports.clear();
    await Promise.all(all.map((p) => p.then((t) => t.close()).catch(() => {})));
  }
}
