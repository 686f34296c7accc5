// Tracking: vrrp_script checks (interval, timeout, rise, fall) and interface state, and how they
// combine into an instance's priority adjustment and faults (keepalived's weight rules).
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import type { Clock } from './instance.ts';
import { parseSelfCheck, runSelfCheck, timedCheck } from './check.ts';
import type { TrackInterfaceRef, VrrpScriptConfig, TrackScriptRef } from './config.ts';

export type CheckStatus = 'init' | 'ok' | 'failed';

/** Runs a check once; resolves true on success (exit status 0 within the timeout). */
export type CheckRunner = (argv: string[], timeoutMs: number) => Promise<boolean>;

export interface RunAs {
  uid?: number;
  gid?: number;
}

/** Runs a command without a shell, killing it (and only it) when it overruns; our own checks run in-process. */
export function commandRunner(runAs: RunAs = {}): CheckRunner {
  return (argv, timeoutMs) => {
    const self = parseSelfCheck(argv);
    if (self) return runSelfCheck(self, timeoutMs);
    return timedCheck(timeoutMs, (finish) => {
      const child = spawn(argv[0], argv.slice(1), { stdio: 'ignore', uid: runAs.uid, gid: runAs.gid });
      child.on('error', () => finish(false));
      child.on('exit', (code) => finish(code === 0));
      return () => child.kill('SIGKILL');
    });
  };
}

/** One vrrp_script: a check repeated every interval; rise successes make it ok, fall failures failed. */
export class ScriptTracker {
  status: CheckStatus;
  private good = 0;
  private bad = 0;
  private timer: unknown = null;
  private running = false;
  private stopped = false;
  private firstRun: Promise<void> | null = null;

  constructor(
    public readonly cfg: VrrpScriptConfig,
    private readonly runner: CheckRunner,
    private readonly clock: Clock,
    private readonly onChange: (t: ScriptTracker, before: CheckStatus) => void,
  ) {
    this.status = cfg.initFail ? 'failed' : 'init';
  }

  /** Feeds one result (exported for tests). keepalived: from init one result decides. */
  record(ok: boolean): void {
    const before = this.status;
    if (ok) {
      this.good++;
      this.bad = 0;
      if (this.status === 'init' || (this.status === 'failed' && this.good >= this.cfg.rise)) this.status = 'ok';
    } else {
      this.bad++;
      this.good = 0;
      if (this.status === 'init' || (this.status === 'ok' && this.bad >= this.cfg.fall)) this.status = 'failed';
    }
    if (this.status !== before) this.onChange(this, before);
  }

  private async runOnce(): Promise<void> {
    if (this.running || this.stopped) return;
    this.running = true;
    let ok: boolean;
    try {
      ok = await this.runner(this.cfg.argv, this.cfg.timeout * 1000);
    } catch {
      ok = false;
    }
    this.running = false;
    if (!this.stopped) this.record(ok);
  }

  /** Starts the periodic checks; the returned promise settles after the first result. */
  start(): Promise<void> {
    if (this.firstRun) return this.firstRun;
    const loop = () => {
      if (this.stopped) return;
      this.timer = this.clock.setTimeout(() => {
        void this.runOnce().then(loop);
      }, this.cfg.interval * 1000);
    };
    this.firstRun = this.runOnce().then(loop);
    return this.firstRun;
  }

  stop(): void {
    this.stopped = true;
    if (this.timer !== null) this.clock.clearTimeout(this.timer);
    this.timer = null;
  }
}

/** Whether an interface is administratively up with a carrier (sysfs). */
export function interfaceUp(name: string): boolean {
  try {
    const flags = parseInt(readFileSync(`/sys/class/net/${name}/flags`, 'utf8').trim(), 16);
    if (!(flags & 1)) return false;
    return readFileSync(`/sys/class/net/${name}/carrier`, 'utf8').trim() === '1';
  } catch {
    return false;
  }
}

export interface TrackedScript {
  ref: TrackScriptRef;
  tracker: { status: CheckStatus; cfg: { name: string; weight: number } };
}

/**
 * keepalived's rules: weight 0 -> a failed check is a fault; weight > 0 -> added while the check
 * succeeds; weight < 0 -> added (lowering the priority) while it fails. Same for interfaces, where
 * "failed" means down. A check still in init counts as neither.
 */
export function combineTracking(
  scripts: TrackedScript[],
  interfaces: { ref: TrackInterfaceRef; up: boolean }[],
): { delta: number; faults: string[] } {
  let delta = 0;
  const faults: string[] = [];
  for (const s of scripts) {
    const w = s.ref.weight ?? s.tracker.cfg.weight;
    const st = s.tracker.status;
    if (st === 'init') continue;
    if (w === 0) {
      if (st === 'failed') faults.push(`script ${s.ref.name} failed`);
    } else if (w > 0 && st === 'ok') delta += w;
    else if (w < 0 && st === 'failed') delta += w;
  }
  for (const i of interfaces) {
    const w = i.ref.weight;
    if (w === 0) {
      if (!i.up) faults.push(`interface ${i.ref.name} down`);
    } else if (w > 0 && i.up) delta += w;
    else if (w < 0 && !i.up) delta += w;
  }
  return { delta, faults };
}
