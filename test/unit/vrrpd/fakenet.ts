// A fake clock and a fake LAN for the VRRP state machine: adverts are encoded for real and delivered
// to the other instances after a small latency, unless the link is cut.
import { VrrpInstance, type Clock, type InstanceIO, type InstanceParams, type State } from '../../../runtime/vrrpd/instance.ts';
import { encodeAdvert, encodeIp, decodeIp, VRRP_MCAST, AUTH_PASS, AUTH_NONE } from '../../../runtime/vrrpd/packet.ts';

export class FakeClock implements Clock {
  t = 0;
  private seq = 0;
  private timers = new Map<number, { at: number; fn: () => void; seq: number }>();
  now(): number {
    return this.t;
  }
  setTimeout(fn: () => void, ms: number): unknown {
    const id = ++this.seq;
    this.timers.set(id, { at: this.t + Math.max(0, ms), fn, seq: id });
    return id;
  }
  clearTimeout(h: unknown): void {
    this.timers.delete(h as number);
  }
  /** Runs every timer due within ms, in time order, moving the clock along. */
  advance(ms: number): void {
    const end = this.t + ms;
    for (;;) {
      let next: [number, { at: number; fn: () => void; seq: number }] | undefined;
      for (const e of this.timers)
        if (e[1].at <= end && (!next || e[1].at < next[1].at || (e[1].at === next[1].at && e[1].seq < next[1].seq))) next = e;
      if (!next) break;
      this.timers.delete(next[0]);
      this.t = next[1].at;
      next[1].fn();
    }
    this.t = end;
  }
}

export interface Transition {
  at: number;
  from: State;
  to: State;
  reason: string;
}

export interface Node {
  inst: VrrpInstance;
  addr: string;
  transitions: Transition[];
  sent: { at: number; priority: number }[];
  holdsVip: boolean;
  /** When the instance (re)announced its VIPs (acquire: addresses and gratuitous ARPs). */
  announced: number[];
  ttl: number;
  /** corrupt outgoing packets this way (tests of the receive checks) */
  mangle?: (ip: Buffer) => void;
}

export class FakeLan {
  nodes: Node[] = [];
  cut = new Set<string>(); // addresses whose link is down
  latency = 1;
  constructor(readonly clock: FakeClock) {}

  add(params: Partial<InstanceParams> & { name: string }, addr: string): Node {
    const p: InstanceParams = {
      initialState: 'BACKUP',
      vrid: 51,
      priority: 100,
      advertInt: 1,
      version: 3,
      auth: undefined,
      unicastPeers: [],
      nopreempt: false,
      preemptDelay: 0,
      ...params,
    };
    const node = { addr, transitions: [], sent: [], holdsVip: false, announced: [], ttl: 255 } as unknown as Node;
    const io: InstanceIO = {
      sendAdvert: (priority) => {
        node.sent.push({ at: this.clock.now(), priority });
        const inst = node.inst;
        const adv = encodeAdvert(
          {
            version: inst.params.version,
            vrid: inst.params.vrid,
            priority,
            interval: inst.intervalField,
            addresses: ['10.0.0.100'],
            authType: inst.params.auth ? AUTH_PASS : AUTH_NONE,
            authData: inst.params.auth?.pass,
          },
          addr,
          VRRP_MCAST,
        );
        const ip = encodeIp(addr, VRRP_MCAST, adv, node.ttl);
        node.mangle?.(ip);
        if (this.cut.has(addr)) return;
        for (const other of this.nodes) {
          if (other === node || this.cut.has(other.addr)) continue;
          this.clock.setTimeout(() => {
            if (other.inst.state !== 'STOP') other.inst.receive(decodeIp(ip)!);
          }, this.latency);
        }
      },
      acquire: () => {
        node.holdsVip = true;
        node.announced.push(this.clock.now());
      },
      release: () => {
        node.holdsVip = false;
      },
      transition: (from, to, reason) => node.transitions.push({ at: this.clock.now(), from, to, reason }),
      log: () => {},
    };
    node.inst = new VrrpInstance(p, addr, io, this.clock);
    this.nodes.push(node);
    return node;
  }

  masters(): Node[] {
    return this.nodes.filter((n) => n.inst.state === 'MASTER');
  }
}
