// How the hosts of one run wait for each other: a role that must come after another role on other
// hosts (the proxy after the web nodes' apache), and changes that run on one host of a group at a
// time, lowest rank first (the VRRP backup before the master).
import type { Host } from '../../inventory/types.ts';
import type { Serial } from './role.ts';
import type { ExecResult, Transport } from './transport.ts';

/** How long a host waits at a turn for its peers of lower rank, and for a peer to answer peerReady. */
export const TURN_WAIT_MS = 20 * 60_000;
export const PEER_READY_MS = 60_000;

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

/** What the serial turns need to know about the run: its hosts, their connections, its progress. */
export interface TurnsOfRun {
  hosts: Host[];
  progress: Progress;
  /** The open connection to a host of the run (none when it is unreachable or not connected yet). */
  transport(host: string): Transport | undefined;
  /** Interruption (SIGINT): waiting for lower ranks stops. */
  signal?: AbortSignal;
  /** How long a host waits for its peers of lower rank (default 20 min). */
  turnWaitMs?: number;
  /** How long a host waits for each peer to answer peerReady (default a minute). */
  peerReadyMs?: number;
}

/** The exit a turn reports when it is not taken because it failed on a peer. */
const notTaken = (serial: Serial, failedOn: string): ExecResult => ({
  code: 1,
  stdout: '',
  stderr: `not run: it failed on ${failedOn}, and the ${serial.group} hosts change one at a time, stopping at the first failure`,
});

/**
 * The serial turns of one run: a task's change or a handler that runs on one host of a group at a
 * time. A host takes its turn after every peer of a lower rank took the same turn or is past the
 * role, under the group's lock, once every peer answers peerReady. A turn that failed on one host is
 * not taken by the others (the LBs stop at the first LB that fails).
 *
 * Ranks are read once, when a host arrives; a peer that arrived first is judged by the rank it stated
 * then (not by a fresh reading), so that two hosts never wait for each other.
 */
export class SerialTurns {
  private readonly mutex = new Mutex();
  /** Turns that failed somewhere (turn key -> host): the other hosts of the group do not take them. */
  private readonly failed = new Map<string, string>();
  /** The rank each host waiting at a turn stated when it arrived (turn key -> host -> rank). */
  private readonly waiting = new Map<string, Map<string, number>>();

  constructor(private readonly run: TurnsOfRun) {}

  /**
   * Runs `fn` as `host`'s turn `turn` of role `role`; `succeeded` says whether it went well (when
   * not, the peers do not take the turn).
   */
  async take(
    host: Host,
    t: Transport,
    role: string,
    turn: string,
    serial: Serial,
    fn: () => Promise<ExecResult>,
    succeeded: (r: ExecResult) => boolean,
  ): Promise<ExecResult> {
    const peers = this.run.hosts.filter((p) => p.group === serial.group && p.name !== host.name);
    const key = `${serial.group}:${role}:${turn}`;
    const waiting = this.waiting.get(key) ?? this.waiting.set(key, new Map()).get(key)!;
    if (serial.rank) await this.waitLowerRanks(host, t, peers, role, turn, serial.rank, waiting);
    try {
      return await this.mutex.run(`serial:${serial.group}`, async () => {
        const failedOn = this.failed.get(key);
        if (failedOn) return notTaken(serial, failedOn);
        if (serial.peerReady) await this.waitPeers(peers, serial.peerReady);
        const r = await fn();
        if (!succeeded(r)) this.failed.set(key, host.name);
        return r;
      });
    } finally {
      waiting.delete(host.name);
      this.run.progress.turnTaken(host.name, turn);
    }
  }

  /** States this host's rank, and waits until no peer of a lower rank still has the turn to take. */
  private async waitLowerRanks(
    host: Host,
    t: Transport,
    peers: Host[],
    role: string,
    turn: string,
    rank: string,
    waiting: Map<string, number>,
  ): Promise<void> {
    const { progress } = this.run;
    const mine = await rankOf(t, rank);
    const probed = new Map<string, number>();
    for (const p of peers)
      if (!waiting.has(p.name) && !progress.isPast(p.name, role, turn)) probed.set(p.name, await rankOf(this.run.transport(p.name), rank));
    waiting.set(host.name, mine);
    progress.changed();
    const lower = (p: Host) => (waiting.get(p.name) ?? probed.get(p.name) ?? Infinity) < mine;
    await progress.until(
      () => peers.every((p) => progress.isPast(p.name, role, turn) || !lower(p)),
      this.run.turnWaitMs ?? TURN_WAIT_MS,
      this.run.signal,
    );
  }

  /** Waits (bounded) until each reachable peer passes peerReady. */
  private async waitPeers(peers: Host[], peerReady: string): Promise<void> {
    for (const peer of peers) {
      const pt = this.run.transport(peer.name);
      if (!pt) continue;
      const deadline = Date.now() + (this.run.peerReadyMs ?? PEER_READY_MS);
      for (;;) {
        const r = await pt.exec(peerReady).catch(() => ({ code: 1 }));
        if (r.code === 0 || Date.now() > deadline) break;
        await new Promise((res) => setTimeout(res, 250));
      }
    }
  }
}

/** A host's rank at a turn: what the rank script prints (0 when it fails), Infinity without a connection. */
export async function rankOf(t: Transport | undefined, rank: string): Promise<number> {
  if (!t) return Infinity;
  const r = await t.exec(rank).catch(() => ({ code: 1, stdout: '' }));
  const n = Number(r.stdout.trim());
  return r.code === 0 && Number.isFinite(n) ? n : 0;
}
