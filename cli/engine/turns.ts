// How the hosts of one run wait for each other: a role that must come after another role on other
// hosts (the proxy after the web nodes' apache), and changes that run on one host of a group at a
// time, lowest rank first (the VRRP backup before the master).

/** Serializes work per key (one LB at a time) across the whole run. */
export class Mutex {
  private tail = new Map<string, Promise<void>>();
  async run<T>(key: string, fn: () => Promise<T>): Promise<T> {
    const prev = this.tail.get(key) ?? Promise.resolve();
    let release!: () => void;
    const next = new Promise<void>((r) => (release = r));
    this.tail.set(
      key,
      prev.then(() => next),
    );
    await prev;
    try {
      return await fn();
    } finally {
      release();
    }
  }
}

/** What each host of the run has done so far: roles finished, serial turns taken, or all done. */
export class Progress {
  private readonly roles = new Map<string, Set<string>>();
  private readonly turns = new Map<string, Set<string>>();
  private readonly finished = new Set<string>();
  private waiters: (() => void)[] = [];

  /** Wakes the waiters: something they wait on may have changed (a peer arrived at a turn). */
  changed(): void {
    const w = this.waiters;
    this.waiters = [];
    for (const f of w) f();
  }
  roleDone(host: string, role: string): void {
    (this.roles.get(host) ?? this.roles.set(host, new Set()).get(host)!).add(role);
    this.changed();
  }
  turnTaken(host: string, turn: string): void {
    (this.turns.get(host) ?? this.turns.set(host, new Set()).get(host)!).add(turn);
    this.changed();
  }
  hostDone(host: string): void {
    this.finished.add(host);
    this.changed();
  }
  /** True when the host finished the role, or has nothing more to do in this run. */
  isPast(host: string, role: string, turn?: string): boolean {
    return this.finished.has(host) || !!this.roles.get(host)?.has(role) || (turn !== undefined && !!this.turns.get(host)?.has(turn));
  }
  /** Resolves once `ready()` holds (re-checked on every change), or after timeoutMs. True when it holds. */
  async until(ready: () => boolean, timeoutMs: number, signal?: AbortSignal): Promise<boolean> {
    const deadline = Date.now() + timeoutMs;
    while (!ready()) {
      const left = deadline - Date.now();
      if (left <= 0 || signal?.aborted) return false;
      await new Promise<void>((res) => {
        const t = setTimeout(done, Math.min(left, 1000));
        function done() {
          clearTimeout(t);
          res();
        }
        this.waiters.push(done);
      });
    }
    return true;
  }
}
