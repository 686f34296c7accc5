// One VRRP instance: the RFC 5798 state machine (RFC 3768 timers for VRRPv2), driven by an
// injectable clock and talking to the world through InstanceIO, so it runs the same on a fake clock
// in tests as on the network in the daemon.
import { AUTH_NONE, AUTH_PASS, decodeAdvert, ipToInt, type Advert, type IpPacket } from './packet.ts';
import type { VrrpInstanceConfig } from './config.ts';

export type State = 'INIT' | 'BACKUP' | 'MASTER' | 'FAULT' | 'STOP';

/**
 * A backup that preempts a running master of lower priority adds the VIPs this long after its
 * first advert: the old master drops them when that advert arrives (well under a millisecond on a
 * LAN), so the two never hold them at once. A dead master is replaced without this wait.
 */
export const PREEMPT_HANDOVER_MS = 20;

/** A master that hears a lower priority master announces its VIPs again, at most this often. */
export const REANNOUNCE_MS = 1000;

export interface Clock {
  now(): number; // ms
  setTimeout(fn: () => void, ms: number): unknown;
  clearTimeout(handle: unknown): void;
}

export const realClock: Clock = {
  now: () => performance.now(),
  setTimeout: (fn, ms) => setTimeout(fn, Math.max(0, ms)),
  clearTimeout: (h) => clearTimeout(h as ReturnType<typeof setTimeout>),
};

export interface InstanceIO {
  /** send an advertisement (the instance's VIPs, version, auth) with this priority */
  sendAdvert(priority: number): void;
  /** the instance became master: add the virtual addresses, announce them (gratuitous ARP) */
  acquire(): void;
  /** the instance left master: remove the virtual addresses */
  release(): void;
  /** after every state change, with the reason (logs, notify scripts, status) */
  transition(from: State, to: State, reason: string): void;
  /** noteworthy events that are not transitions (dropped adverts...) */
  log(message: string): void;
}

export interface Counters {
  advertsSent: number;
  advertsReceived: number;
  priorityZeroSent: number;
  priorityZeroReceived: number;
  becameMaster: number;
  releasedMaster: number;
  ttlErrors: number;
  versionErrors: number;
  checksumErrors: number;
  lengthErrors: number;
  typeErrors: number;
  otherVrid: number;
  authErrors: number;
  intervalErrors: number;
  peerErrors: number;
}

const zeroCounters = (): Counters => ({
  advertsSent: 0,
  advertsReceived: 0,
  priorityZeroSent: 0,
  priorityZeroReceived: 0,
  becameMaster: 0,
  releasedMaster: 0,
  ttlErrors: 0,
  versionErrors: 0,
  checksumErrors: 0,
  lengthErrors: 0,
  typeErrors: 0,
  otherVrid: 0,
  authErrors: 0,
  intervalErrors: 0,
  peerErrors: 0,
});

/** The parameters the state machine uses (a subset of VrrpInstanceConfig). */
export type InstanceParams = Pick<
  VrrpInstanceConfig,
  'name' | 'initialState' | 'vrid' | 'priority' | 'advertInt' | 'version' | 'auth' | 'unicastPeers' | 'nopreempt' | 'preemptDelay'
>;

/** RFC 5798 Skew_Time in ms for a priority and master advertisement interval (ms); v2: (256 - p) / 256 s. */
export function skewTime(version: 2 | 3, priority: number, masterAdverMs: number): number {
  return version === 3 ? ((256 - priority) * masterAdverMs) / 256 : ((256 - priority) * 1000) / 256;
}

/** RFC 5798 Master_Down_Interval in ms. */
export function masterDownInterval(version: 2 | 3, priority: number, masterAdverMs: number): number {
  return 3 * masterAdverMs + skewTime(version, priority, masterAdverMs);
}

/** Priority after tracking adjustments: the owner keeps 255, others stay within 1..254. */
export function effectivePriority(base: number, delta: number): number {
  if (base === 255) return 255;
  return Math.max(1, Math.min(254, base + delta));
}

export interface InstanceStatus {
  name: string;
  state: State;
  priority: number;
  basePriority: number;
  masterAddress: string | null;
  masterPriority: number | null;
  localAddress: string;
  vrid: number;
  version: 2 | 3;
  advertInt: number;
  masterAdvertInt: number;
  faults: string[];
  since: number; // clock ms of the last transition
  lastReason: string;
  counters: Counters;
}

export class VrrpInstance {
  state: State = 'INIT';
  counters: Counters = zeroCounters();
  masterAddress: string | null = null;
  masterPriority: number | null = null;
  lastReason = 'starting';
  since: number;
  private timer: unknown = null;
  private timerKind: 'adver' | 'down' | null = null;
  private timerDue = 0;
  private masterAdverMs: number;
  /**
   * preempt_delay as keepalived 2.2 has it: a backup that hears a master of lower priority starts a
   * timer of preempt_delay and preempts only once it has run out; an advert of a priority as high as
   * ours stops it. So it holds after a start, a fault, or a tracked check that recovered alike.
   */
  private preemptAt: number | null = null;
  /** When a lower priority master was last heard (we preempt it): its VIP must go before ours comes. */
  private lowerMasterAt: number | null = null;
  private handover: unknown = null;
  /** the master that just left with priority 0 (the down timer then runs for the skew time only) */
  private leftFrom: string | null = null;
  private delta = 0;
  private faults: string[] = [];
  /** When the VIPs were last announced again to a lower priority master's listeners. */
  private lastReannounce: number | null = null;

  constructor(
    public params: InstanceParams,
    public localAddress: string,
    private readonly io: InstanceIO,
    private readonly clock: Clock = realClock,
  ) {
    this.masterAdverMs = this.advertMs;
    this.since = clock.now();
  }

  get advertMs(): number {
    return Math.round(this.params.advertInt * 1000);
  }

  get priority(): number {
    return effectivePriority(this.params.priority, this.delta);
  }

  /** the advertised interval field: v2 seconds, v3 centiseconds */
  get intervalField(): number {
    return this.params.version === 3 ? Math.round(this.params.advertInt * 100) : Math.round(this.params.advertInt);
  }

  /** ms until the pending timer fires (tests and status), or null */
  timerRemaining(): number | null {
    return this.timer === null ? null : this.timerDue - this.clock.now();
  }

  get pendingTimer(): 'adver' | 'down' | null {
    return this.timerKind;
  }

  private setTimer(kind: 'adver' | 'down', ms: number): void {
    this.cancelTimer();
    if (kind === 'adver') this.leftFrom = null;
    this.timerKind = kind;
    this.timerDue = this.clock.now() + ms;
    this.timer = this.clock.setTimeout(() => {
      this.timer = null;
      this.timerKind = null;
      if (kind === 'adver') this.onAdverTimer();
      else this.onDownTimer();
    }, ms);
  }

  private cancelTimer(): void {
    if (this.timer !== null) this.clock.clearTimeout(this.timer);
    this.timer = null;
    this.timerKind = null;
  }

  /** Changes state; `first` runs before the transition is reported (logs, status file, notify scripts). */
  private go(to: State, reason: string, first?: () => void): void {
    const from = this.state;
    this.state = to;
    this.lastReason = reason;
    this.since = this.clock.now();
    first?.();
    this.io.transition(from, to, reason);
  }

  private advertise(priority = this.priority): void {
    this.io.sendAdvert(priority);
    this.counters.advertsSent++;
    if (priority === 0) this.counters.priorityZeroSent++;
  }

  /** Leaves INIT (RFC 5798 6.4.1). */
  start(): void {
    if (this.state !== 'INIT') return;
    if (this.faults.length) return this.go('FAULT', `fault: ${this.faults.join(', ')}`);
    this.enterBackupOrOwner('startup');
  }

  private enterBackupOrOwner(why: string): void {
    this.masterAdverMs = this.advertMs;
    this.masterAddress = null;
    this.masterPriority = null;
    this.preemptAt = null;
    if (this.params.priority === 255) {
      this.becomeMaster(`${why}: address owner (priority 255)`);
      return;
    }
    if (this.params.initialState === 'MASTER') {
      // keepalived: a configured MASTER waits one interval (plus skew) for a better master, not three
      this.setTimer('down', this.masterAdverMs + skewTime(this.params.version, this.priority, this.masterAdverMs));
      this.go('BACKUP', `${why}: state MASTER configured, waiting one advert interval for a higher priority master`);
    } else {
      this.setTimer('down', this.downInterval());
      this.go('BACKUP', `${why}: waiting for adverts`);
    }
  }

  private downInterval(): number {
    return masterDownInterval(this.params.version, this.priority, this.masterAdverMs);
  }

  private becomeMaster(reason: string): void {
    this.advertise();
    this.setTimer('adver', this.advertMs);
    this.masterAddress = this.localAddress;
    this.masterPriority = this.priority;
    this.counters.becameMaster++;
    // Preempting a master that is still there: it drops the addresses when our first advert
    // arrives; ours come PREEMPT_HANDOVER_MS later, so that the two never hold them at once.
    const live = this.lowerMasterAt !== null && this.clock.now() - this.lowerMasterAt < this.downInterval();
    this.lowerMasterAt = null;
    this.preemptAt = null;
    // the addresses and the gratuitous ARPs before anything slower (status file, logs, notify)
    this.go('MASTER', live ? `${reason}; addresses in ${PREEMPT_HANDOVER_MS} ms, once the old master dropped them` : reason, () => {
      if (!live) return this.io.acquire();
      this.handover = this.clock.setTimeout(() => {
        this.handover = null;
        if (this.state === 'MASTER') this.io.acquire();
      }, PREEMPT_HANDOVER_MS);
    });
  }

  private leaveMaster(): void {
    this.counters.releasedMaster++;
    if (this.handover !== null) {
      this.clock.clearTimeout(this.handover);
      this.handover = null;
    }
    this.io.release();
  }

  private onAdverTimer(): void {
    if (this.state !== 'MASTER') return;
    this.advertise();
    this.setTimer('adver', this.advertMs);
  }

  private onDownTimer(): void {
    if (this.state !== 'BACKUP') return;
    if (this.leftFrom) {
      const who = this.leftFrom;
      this.leftFrom = null;
      this.becomeMaster(`master ${who} left (priority 0 advert), skew time elapsed`);
      return;
    }
    const from = this.masterAddress
      ? `no advert from ${this.masterAddress} for ${(this.downInterval() / 1000).toFixed(3)} s`
      : `no master seen for ${(this.downInterval() / 1000).toFixed(3)} s`;
    this.becomeMaster(`master down timer expired (${from})`);
  }

  /** A datagram for IP protocol 112 arrived on the instance's interface. */
  receive(ip: IpPacket): void {
    if (ip.src === this.localAddress) return; // our own, looped back
    // multicast adverts never leave the link: TTL 255 proves it (RFC 5798 7.1). Unicast adverts may
    // cross routers (keepalived accepts them too); the peer list is their check.
    if (ip.ttl !== 255 && this.params.unicastPeers.length === 0) {
      this.counters.ttlErrors++;
      return;
    }
    const d = decodeAdvert(ip.payload, ip.src, ip.dst);
    if (!d.advert) {
      if (d.error === 'checksum') this.counters.checksumErrors++;
      else if (d.error === 'version') this.counters.versionErrors++;
      else if (d.error === 'type') this.counters.typeErrors++;
      else this.counters.lengthErrors++;
      return;
    }
    const a = d.advert;
    if (a.vrid !== this.params.vrid) {
      this.counters.otherVrid++;
      return;
    }
    if (a.version !== this.params.version) {
      this.counters.versionErrors++;
      return;
    }
    if (a.version === 2) {
      const auth = this.params.auth;
      const wantType = auth ? AUTH_PASS : AUTH_NONE;
      if (a.authType !== wantType || (auth && a.authData !== auth.pass)) {
        this.counters.authErrors++;
        return;
      }
      if (a.interval !== this.intervalField) {
        this.counters.intervalErrors++;
        return;
      }
    }
    if (this.params.unicastPeers.length && !this.params.unicastPeers.includes(ip.src)) {
      this.counters.peerErrors++;
      return;
    }
    this.counters.advertsReceived++;
    if (a.priority === 0) this.counters.priorityZeroReceived++;
    this.onAdvert(ip.src, a);
  }

  private onAdvert(src: string, a: Advert): void {
    const mine = this.priority;
    const adverMs = a.version === 3 ? a.interval * 10 : this.advertMs;
    if (this.state === 'BACKUP') {
      if (a.priority === 0) {
        const skew = skewTime(this.params.version, mine, this.masterAdverMs);
        this.setTimer('down', skew);
        this.leftFrom = src;
        this.lastReason = `${src} left (priority 0): taking over after the skew time ${(skew / 1000).toFixed(3)} s`;
        this.io.log(this.lastReason);
        return;
      }
      let delayed = false;
      if (this.params.preemptDelay > 0 && !this.params.nopreempt) {
        if (a.priority >= mine) this.preemptAt = null;
        else {
          this.preemptAt ??= this.clock.now() + this.params.preemptDelay * 1000;
          delayed = this.clock.now() < this.preemptAt;
        }
      }
      if (this.params.nopreempt || a.priority >= mine || delayed) {
        this.masterAdverMs = adverMs;
        this.leftFrom = null;
        if (this.masterAddress !== src)
          this.io.log(`master is ${src} (priority ${a.priority})${delayed ? `, preemption delayed ${this.params.preemptDelay} s` : ''}`);
        this.masterAddress = src;
        this.masterPriority = a.priority;
        this.setTimer('down', this.downInterval());
      }
      // else: a lower priority master and we preempt: ignore it, the down timer makes us master
      else this.lowerMasterAt = this.clock.now();
      return;
    }
    if (this.state === 'MASTER') {
      if (a.priority === 0) {
        this.advertise();
        this.setTimer('adver', this.advertMs);
        return;
      }
      if (a.priority > mine || (a.priority === mine && ipToInt(src) > ipToInt(this.localAddress))) {
        this.cancelTimer();
        this.masterAdverMs = adverMs;
        this.masterAddress = src;
        this.masterPriority = a.priority;
        this.setTimer('down', this.downInterval());
        this.go(
          'BACKUP',
          a.priority > mine
            ? `higher priority advert from ${src} (${a.priority} > ${mine})`
            : `advert from ${src} with equal priority ${mine} and a higher address`,
          () => this.leaveMaster(),
        );
        return;
      }
      // a lower priority master (after a partition heals): answer at once so it steps down, and
      // announce the VIPs again (as keepalived does): the hosts whose neighbour entry the other master's
      // gratuitous ARPs moved would otherwise send to an LB that no longer holds them. At most once a second.
      this.advertise();
      this.setTimer('adver', this.advertMs);
      if (this.lastReannounce === null || this.clock.now() - this.lastReannounce >= REANNOUNCE_MS) {
        this.lastReannounce = this.clock.now();
        this.io.acquire();
      }
    }
  }

  /** Tracking results: a priority adjustment and the list of faults (empty: healthy). */
  setTracking(delta: number, faults: string[]): void {
    const before = this.priority;
    this.delta = delta;
    this.faults = faults;
    if (this.state === 'INIT' || this.state === 'STOP') return;
    if (faults.length && this.state !== 'FAULT') {
      const wasMaster = this.state === 'MASTER';
      this.cancelTimer();
      if (wasMaster) this.advertise(0);
      this.masterAddress = null;
      this.masterPriority = null;
      this.go('FAULT', `fault: ${faults.join(', ')}`, wasMaster ? () => this.leaveMaster() : undefined);
      return;
    }
    if (!faults.length && this.state === 'FAULT') {
      this.enterBackupOrOwner('fault cleared');
      return;
    }
    if (this.priority !== before) {
      this.io.log(`priority ${before} -> ${this.priority}`);
      if (this.state === 'MASTER') {
        this.advertise();
        this.setTimer('adver', this.advertMs);
      }
    }
  }

  /** New parameters after a reload (same interface, VRID, version and peers): the state stays. */
  reconfigure(params: InstanceParams, localAddress: string): void {
    const intervalChanged = params.advertInt !== this.params.advertInt;
    const prio = this.priority;
    this.params = params;
    this.localAddress = localAddress;
    if (this.state === 'MASTER') {
      this.masterAddress = localAddress;
      if (intervalChanged || prio !== this.priority) {
        this.advertise();
        this.setTimer('adver', this.advertMs);
      }
    }
  }

  /** Leaving: a master sends priority 0 and releases its addresses. */
  shutdown(reason = 'stopping'): void {
    const wasMaster = this.state === 'MASTER';
    this.cancelTimer();
    if (wasMaster) this.advertise(0);
    const release = wasMaster ? () => this.leaveMaster() : undefined;
    if (this.state !== 'STOP') this.go('STOP', reason, release);
    else release?.();
  }

  status(): InstanceStatus {
    return {
      name: this.params.name,
      state: this.state,
      priority: this.priority,
      basePriority: this.params.priority,
      masterAddress: this.state === 'MASTER' ? this.localAddress : this.masterAddress,
      masterPriority: this.state === 'MASTER' ? this.priority : this.masterPriority,
      localAddress: this.localAddress,
      vrid: this.params.vrid,
      version: this.params.version,
      advertInt: this.params.advertInt,
      masterAdvertInt: this.masterAdverMs / 1000,
      faults: [...this.faults],
      since: this.since,
      lastReason: this.lastReason,
      counters: { ...this.counters },
    };
  }
}
