// The runner: every host in parallel, its roles in order, each role's tasks in order. Per role, one
// round trip probes the state of all its tasks; each change is made in one round trip that also
// re-probes the tasks after it (their state may depend on it). A host whose state is already right
// costs one round trip per role, after the one that gathers its facts.
//
// The parts: this file (a run's hosts, roles, results and facts), step.ts (one task or handler on a
// host), turns.ts (changes made on one host of a group at a time, and roles that wait for other
// hosts), reconnect.ts (the check after a change that could cut the controller off).
import type { Host, Inventory } from '../../inventory/types.ts';
import { gatherFacts, splitSections, STATE_DIR, type Facts, type Interest } from './facts.ts';
import { confirmByReconnect } from './reconnect.ts';
import { roleContext, type Handler, type Role, type Serial, type Task } from './role.ts';
import { probeBatch, stepHandler, stepTask } from './step.ts';
import { Progress, SerialTurns, TURN_WAIT_MS } from './turns.ts';
import { marker, shq } from './shell.ts';
import { execRead, UnreachableError, type ExecResult, type Transport } from './transport.ts';
import type { Redactor } from './redact.ts';

export type Status = 'ok' | 'changed' | 'failed' | 'skipped';

export interface TaskResult {
  host: string;
  role: string;
  task: string;
  /** 'task' or 'handler'. */
  type: 'task' | 'handler';
  status: Status;
  /** Why it changed, was skipped or failed (already redacted). */
  message?: string;
  /** Unified diff or change description (already redacted), when it changed or would change. */
  diff?: string;
}

export interface HostRecap {
  ok: number;
  changed: number;
  failed: number;
  unreachable: number;
  skipped: number;
}

export interface Reporter {
  start(plan: { host: Host; roles: string[] }[]): void;
  unreachable(host: Host, message: string): void;
  roleStart(host: Host, role: string, tasks: string[]): void;
  result(r: TaskResult): void;
  roleEnd(host: Host, role: string): void;
  end(run: RunResult): void;
}

export interface RunResult {
  hosts: Record<string, HostRecap>;
  results: TaskResult[];
  /** SSH round trips per host (facts included). */
  roundTrips: Record<string, number>;
  check: boolean;
  interrupted: boolean;
  /** The facts gathered in the run (its hosts', and those roles asked for), by host name. */
  facts: Record<string, Facts>;
}

export interface RunOptions {
  inventory: Inventory;
  roles: Role[];
  connect(host: Host): Promise<Transport>;
  reporter: Reporter;
  redactor: Redactor;
  check?: boolean;
  /** Host names or group names. */
  limit?: string[];
  /** Role names. */
  tags?: string[];
  /** Set to stop between tasks (SIGINT): the current step finishes, pending handlers stay recorded on the host. */
  signal?: AbortSignal;
  /** Where hasetup keeps its state on each host. */
  stateDir?: string;
  /**
   * Checked once the facts of `hosts` are in (those outside the run are read for it), before any host
   * of the run changes anything: each problem returned fails every host of the run, nothing changed.
   */
  preflight?: { hosts: Host[]; check(factsOf: (h: Host) => Facts | undefined): string[] };
}

export function selectHosts(inv: Inventory, limit?: string[]): Host[] {
  if (!limit || limit.length === 0) return inv.hosts;
  const unknown = limit.filter((l) => !inv.hosts.some((h) => h.name === l || h.group === l));
  if (unknown.length) throw new Error(`--limit: no host or group named ${unknown.join(', ')} in ${inv.file}`);
  return inv.hosts.filter((h) => limit.includes(h.name) || limit.includes(h.group));
}

export function selectRoles(roles: Role[], tags?: string[]): Role[] {
  if (!tags || tags.length === 0) return roles;
  const unknown = tags.filter((t) => !roles.some((r) => r.name === t));
  if (unknown.length) throw new Error(`--tags: no role named ${unknown.join(', ')} (roles: ${roles.map((r) => r.name).join(', ')})`);
  return roles.filter((r) => tags.includes(r.name));
}

/** The packages and services the roles that apply to a host care about (read with its facts). */
export function interestOf(roles: Role[], host: Host, inv: Inventory): Interest {
  const packages = new Set<string>();
  const services = new Set<string>();
  for (const r of roles) {
    if (!r.appliesTo(host, inv)) continue;
    const i = r.installs?.(host, inv) ?? {};
    for (const p of i.packages ?? []) packages.add(p);
    for (const u of i.services ?? []) services.add(u);
  }
  return { packages: [...packages], services: [...services] };
}

/** The record of the last apply on each host. */
export const LAST_APPLY = `${STATE_DIR}/last-apply.json`;

/** Runs the roles on the hosts (see the top of this file) and reports as it goes. */
export async function run(opts: RunOptions): Promise<RunResult> {
  return new ApplyRun(opts).all();
}

/** The state of one run, shared by its hosts: results, facts, connections, progress and serial turns. */
class ApplyRun {
  private readonly inv: Inventory;
  private readonly check: boolean;
  private readonly stateDir: string;
  private readonly hosts: Host[];
  private readonly roles: Role[];
  private readonly progress = new Progress();
  private readonly turns: SerialTurns;
  private readonly results: TaskResult[] = [];
  private readonly recap: Record<string, HostRecap> = {};
  private readonly roundTrips: Record<string, number> = {};
  private readonly transports = new Map<string, Transport>();
  /** Each host's facts: those of the run as they gather them, others' when a role asks (factsFrom). */
  private readonly facts = new Map<string, Promise<Facts>>();
  private readonly factsReady = new Map<string, (f: Facts | Error) => void>();
  private preflightResult?: Promise<string[]>;

  constructor(private readonly opts: RunOptions) {
    this.inv = opts.inventory;
    this.check = opts.check ?? false;
    this.stateDir = opts.stateDir ?? STATE_DIR;
    this.hosts = selectHosts(this.inv, opts.limit);
    this.roles = selectRoles(opts.roles, opts.tags);
    this.turns = new SerialTurns({
      hosts: this.hosts,
      progress: this.progress,
      transport: (name) => this.transports.get(name),
      signal: opts.signal,
    });
    for (const h of this.hosts) {
      this.recap[h.name] = { ok: 0, changed: 0, failed: 0, unreachable: 0, skipped: 0 };
      const f = new Promise<Facts>((res, rej) => this.factsReady.set(h.name, (x) => (x instanceof Error ? rej(x) : res(x))));
      f.catch(() => {});
      this.facts.set(h.name, f);
    }
  }

  private hostRoles(h: Host): Role[] {
    return this.roles.filter((r) => r.appliesTo(h, this.inv));
  }
  private aborted(): boolean {
    return this.opts.signal?.aborted ?? false;
  }

  async all(): Promise<RunResult> {
    this.opts.reporter.start(this.hosts.map((h) => ({ host: h, roles: this.hostRoles(h).map((r) => r.name) })));
    try {
      await Promise.all(
        this.hosts.map(async (h) => {
          try {
            await this.runHost(h, this.hostRoles(h));
          } finally {
            this.progress.hostDone(h.name);
          }
        }),
      );
    } finally {
      await Promise.all([...this.transports.values()].map((t) => t.close().catch(() => {})));
    }
    const known: Record<string, Facts> = {};
    for (const [name, p] of this.facts) {
      // every host of the run settles its facts (gathered, or failed when it was unreachable)
      const f = await p.catch(() => undefined);
      if (f) known[name] = f;
    }
    const result: RunResult = {
      hosts: this.recap,
      results: this.results,
      roundTrips: this.roundTrips,
      check: this.check,
      interrupted: this.aborted(),
      facts: known,
    };
    this.opts.reporter.end(result);
    return result;
  }

  /** Records a result (redacted), counts it in the host's recap and reports it. */
  private emit(r: TaskResult): void {
    const { redactor } = this.opts;
    const clean: TaskResult = { ...r, message: r.message && redactor.redact(r.message), diff: r.diff && redactor.redact(r.diff) };
    this.results.push(clean);
    this.recap[r.host][clean.status === 'ok' ? 'ok' : clean.status]++;
    this.opts.reporter.result(clean);
  }

  /** A role that does not run on a host, reported as one skipped line. */
  private skipRole(host: Host, role: Role, message: string): void {
    this.opts.reporter.roleStart(host, role.name, []);
    this.emit({ host: host.name, role: role.name, task: '(role)', type: 'task', status: 'skipped', message });
    this.opts.reporter.roleEnd(host, role.name);
  }

  /** Facts of a host outside the run (read-only: one connection, one round trip). */
  private factsOf(h: Host): Promise<Facts> {
    let p = this.facts.get(h.name);
    if (!p) {
      p = (async () => {
        const t = await this.opts.connect(h);
        try {
          return await gatherFacts(t, marker(), interestOf(this.opts.roles, h, this.inv));
        } finally {
          await t.close().catch(() => {});
        }
      })();
      p.catch(() => {});
      this.facts.set(h.name, p);
    }
    return p;
  }

  /** The run's preflight (RunOptions.preflight), once for all hosts: its problems, none when it passes. */
  private preflight(): Promise<string[]> {
    const pf = this.opts.preflight;
    if (!pf) return Promise.resolve([]);
    this.preflightResult ??= (async () => {
      const known = new Map<string, Facts>();
      await Promise.all(
        pf.hosts.map(async (h) => {
          // a host that cannot be read leaves its figures out (the role that needs them fails on its own)
          const f = await this.factsOf(h).catch(() => undefined);
          if (f) known.set(h.name, f);
        }),
      );
      return pf.check((h) => known.get(h.name));
    })();
    return this.preflightResult;
  }

  /** One host: connect, gather its facts, its roles in order, then the record of the run on it. */
  private async runHost(host: Host, roles: Role[]): Promise<void> {
    let t: Transport;
    try {
      t = await this.opts.connect(host);
    } catch (e) {
      this.recap[host.name].unreachable = 1;
      const msg = e instanceof UnreachableError ? e.message : `${host.name}: unreachable: ${(e as Error).message}`;
      this.factsReady.get(host.name)?.(new Error(msg));
      this.opts.reporter.unreachable(host, this.opts.redactor.redact(msg));
      return;
    }
    this.transports.set(host.name, t);
    try {
      let own: Facts;
      try {
        own = await gatherFacts(t, marker(), interestOf(this.opts.roles, host, this.inv));
        this.factsReady.get(host.name)?.(own);
      } catch (e) {
        this.factsReady.get(host.name)?.(e as Error);
        this.emit({ host: host.name, role: 'facts', task: 'gather facts', type: 'task', status: 'failed', message: (e as Error).message });
        return;
      }
      // every host waits for the preflight before its first change
      const problems = await this.preflight();
      if (problems.length) {
        this.emit({
          host: host.name,
          role: 'preflight',
          task: 'check the inventory against the hosts',
          type: 'task',
          status: 'failed',
          message: problems.join('\n'),
        });
        return;
      }
      let failed = false;
      for (const role of roles) {
        if (failed || this.aborted()) {
          this.skipRole(host, role, failed ? 'an earlier task failed on this host' : 'interrupted');
          continue;
        }
        try {
          failed = !(await this.runRole(host, t, own, role));
        } catch (e) {
          // the connection to the host broke (it rebooted, its link went down): this host fails, the others go on
          this.emit({
            host: host.name,
            role: role.name,
            task: '(connection)',
            type: 'task',
            status: 'failed',
            message: (e as Error).message,
          });
          this.opts.reporter.roleEnd(host, role.name);
          failed = true;
        }
        this.progress.roleDone(host.name, role.name);
      }
      // what this run did, for `hasetup status` (not in --check mode: nothing was done)
      if (!this.check) await this.recordRun(host, t, roles);
    } finally {
      this.roundTrips[host.name] = t.roundTrips;
    }
  }

  /** The record of the last apply on the host (LAST_APPLY, under the run's state folder). */
  private async recordRun(host: Host, t: Transport, roles: Role[]): Promise<void> {
    const r = this.recap[host.name];
    const record = JSON.stringify({
      at: new Date().toISOString(),
      ok: r.ok,
      changed: r.changed,
      failed: r.failed,
      roles: roles.map((x) => x.name),
      interrupted: this.aborted(),
    });
    const dir = this.stateDir;
    await t.exec(`mkdir -p ${shq(dir)} && printf '%s\\n' ${shq(record)} > ${shq(`${dir}/last-apply.json`)}`).catch(() => {});
  }

  /** What a role needs before it can start on a host: other hosts' roles done, other hosts' facts. */
  private async prerequisites(host: Host, role: Role): Promise<Map<string, Facts>> {
    const { inv, progress } = this;
    for (const dep of role.after ?? []) {
      const others = this.hosts.filter(
        (h) => h.group === dep.group && h.name !== host.name && this.roles.some((r) => r.name === dep.role && r.appliesTo(h, inv)),
      );
      const ok = await progress.until(() => others.every((h) => progress.isPast(h.name, dep.role)), TURN_WAIT_MS, this.opts.signal);
      if (!ok && !this.aborted())
        throw new Error(`waited ${TURN_WAIT_MS / 60_000} min for role ${dep.role} on ${others.map((h) => h.name).join(', ')}`);
    }
    const peers = new Map<string, Facts>();
    for (const p of role.factsFrom?.(host, inv) ?? []) {
      if (p.name === host.name) continue;
      try {
        peers.set(p.name, await this.factsOf(p));
      } catch (e) {
        const inRun = this.hosts.some((x) => x.name === p.name);
        throw new Error(
          `needs the facts of ${p.name}${inRun ? '' : ' (not in this run: contacted for its facts only)'}: ${(e as Error).message}`,
          {
            cause: e,
          },
        );
      }
    }
    return peers;
  }

  /** The role's tasks and handlers for this host, once its prerequisites are met. */
  private async prepare(host: Host, role: Role, facts: Facts): Promise<{ tasks: Task[]; handlers: Handler[] }> {
    const peers = await this.prerequisites(host, role);
    const ctx = roleContext(role, host, this.inv, facts, peers);
    const tasks = role.tasks(ctx);
    const handlers = role.handlers?.(ctx) ?? [];
    for (const task of tasks)
      for (const n of task.notify ?? [])
        if (!handlers.some((h) => h.name === n)) throw new Error(`task "${task.name}" notifies unknown handler "${n}"`);
    return { tasks, handlers };
  }

  /** Runs `exec` in the host's turn when the step is serial, at once otherwise. */
  private inTurn(
    host: Host,
    t: Transport,
    role: Role,
    turn: string,
    serial: Serial | undefined,
    exec: () => Promise<ExecResult>,
    succeeded: (r: ExecResult) => boolean,
  ): Promise<ExecResult> {
    return serial ? this.turns.take(host, t, role.name, turn, serial, exec, succeeded) : exec();
  }

  /** Runs one role on one host; false when something failed. */
  private async runRole(host: Host, t: Transport, facts: Facts, role: Role): Promise<boolean> {
    const { reporter } = this.opts;
    let prepared: { tasks: Task[]; handlers: Handler[] };
    try {
      prepared = await this.prepare(host, role, facts);
    } catch (e) {
      reporter.roleStart(host, role.name, []);
      const message = `role ${role.name}: ${(e as Error).message}`;
      this.emit({ host: host.name, role: role.name, task: '(prepare)', type: 'task', status: 'failed', message });
      reporter.roleEnd(host, role.name);
      return false;
    }
    const { tasks, handlers } = prepared;
    reporter.roleStart(
      host,
      role.name,
      tasks.map((x) => x.name),
    );
    const pendingFile = `${this.stateDir}/pending/${role.name}`;
    const { ok, notified } = await this.runTasks(host, t, facts, role, tasks, handlers, pendingFile);
    const handlersOk = await this.runHandlers(
      host,
      t,
      role,
      handlers.filter((x) => notified.has(x.name)),
      pendingFile,
    );
    reporter.roleEnd(host, role.name);
    return ok && handlersOk;
  }

  /**
   * The role's tasks in order, from one round trip that probes them all (and reads the handlers an
   * interrupted earlier run left pending). A task that fails, or an interruption, skips the rest.
   */
  private async runTasks(
    host: Host,
    t: Transport,
    facts: Facts,
    role: Role,
    tasks: Task[],
    handlers: Handler[],
    pendingFile: string,
  ): Promise<{ ok: boolean; notified: Set<string> }> {
    const base = { host: host.name, role: role.name, type: 'task' as const };
    const mark = marker();
    const notified = new Set<string>();
    const skipFrom = (from: number, message: string) => {
      for (let j = from; j < tasks.length; j++) this.emit({ ...base, task: tasks[j].name, status: 'skipped', message });
    };
    const first = await execRead(t, `${probeBatch(tasks, 0, mark)}\necho ${mark}pending\ncat ${shq(pendingFile)} 2>/dev/null; true`);
    let states = splitSections(first.stdout, mark);
    for (const n of (states.pending ?? '')
      .split('\n')
      .map((s) => s.trim())
      .filter(Boolean))
      if (handlers.some((h) => h.name === n)) notified.add(n);

    let earlierChange = false;
    for (let i = 0; i < tasks.length; i++) {
      const task = tasks[i];
      if (this.aborted()) {
        skipFrom(i, 'interrupted');
        return { ok: false, notified };
      }
      const o = await stepTask({
        tasks,
        index: i,
        states,
        facts,
        earlierChange,
        check: this.check,
        mark,
        pendingFile,
        exec: (script, stdin, succeeded) =>
          this.inTurn(host, t, role, `task:${task.name}`, task.serial, () => t.exec(script, stdin), succeeded),
        confirm: (c) => confirmByReconnect(() => this.opts.connect(host), t, c),
      });
      // the one way a task fails: reported with its reason, the rest of the role skipped
      if (o.status === 'failed') {
        this.emit({ ...base, task: task.name, status: 'failed', message: o.message, diff: o.diff });
        skipFrom(i + 1, 'an earlier task failed');
        return { ok: false, notified };
      }
      if (o.status === 'ok') {
        this.emit({ ...base, task: task.name, status: 'ok', message: o.message });
        continue;
      }
      earlierChange = true;
      for (const n of o.notify) notified.add(n);
      this.emit({ ...base, task: task.name, status: 'changed', message: o.message, diff: o.diff });
      states = { ...states, ...o.states };
    }
    return { ok: true, notified };
  }

  /**
   * Notified handlers: once each, in their declared order, after the tasks, even after a failure (but
   * not after an interruption: they stay recorded on the host and the next run fires them).
   */
  private async runHandlers(host: Host, t: Transport, role: Role, handlers: Handler[], pendingFile: string): Promise<boolean> {
    let ok = true;
    for (const h of handlers) {
      const o = await stepHandler(h, {
        check: this.check,
        aborted: this.aborted(),
        pendingFile,
        exec: (script, succeeded) => this.inTurn(host, t, role, `handler:${h.name}`, h.serial, () => t.exec(script), succeeded),
      });
      if (o.status === 'failed') ok = false;
      this.emit({ host: host.name, role: role.name, task: h.name, type: 'handler', status: o.status, message: o.message });
    }
    return ok;
  }
}

export function failedRun(r: RunResult): boolean {
  return Object.values(r.hosts).some((h) => h.failed > 0 || h.unreachable > 0) || r.interrupted;
}
