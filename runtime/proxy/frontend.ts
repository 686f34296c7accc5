// A frontend as a data plane runs it: its listeners, the connections accepted and those waiting for a slot
// (frontend maxconn), its counters and rates.
import type net from 'node:net';
import { effectiveTimeouts, type ProxyConfig } from './config.ts';
import { newCounters, Rate } from './counters.ts';
import type { Timeouts } from './types.ts';

export class Frontend {
  listeners: net.Server[] = [];
  /** sessions running */
  cur = 0;
  /** accepted connections waiting for a slot (frontend or global maxconn) */
  pending: net.Socket[] = [];
  c = newCounters();
  connRate = new Rate();
  reqRate = new Rate();
  sessRate = new Rate();
  /** The frontend's own timeouts (a session's until it has a backend), computed once. */
  readonly timeouts: Timeouts;
  constructor(public cfg: ProxyConfig) {
    this.timeouts = effectiveTimeouts(cfg, cfg);
  }
}
