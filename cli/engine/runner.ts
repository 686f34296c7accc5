// The runner: every host in parallel, its roles in order, each role's tasks in order. Per role, one
// round trip probes the state of all its tasks; each change is made in one round trip that also
// re-probes the tasks after it (their state may depend on it). A host whose state is already right
// costs one round trip per role, after the one that gathers its facts.
import type { Host, Inventory } from '../../inventory/types.ts';
import { gatherFacts, splitSections, type Facts, type Interest } from './facts.ts';
import { PlanError, type Plan } from './ops.ts';
import { roleContext, type Handler, type Role, type Serial, type Task } from './role.ts';
import { Mutex, Progress } from './turns.ts';
import { marker, shq } from './shell.ts';
import { UnreachableError, type ExecResult, type Transport } from './transport.ts';
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

function probeBatch(tasks: Task[], from: number, mark: string): string {
  const parts: string[] = [];
  for (let i = from; i < tasks.length; i++) parts.push(`echo ${mark}${i}\n{ ${tasks[i].op.probe()}\n} 2>/dev/null </dev/null`);
  return parts.join('\n');
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

/** Where hasetup keeps its state on each host, and the record of the last apply there. */
export const STATE_DIR = '/var/lib/hasetup';
export const LAST_APPLY = `${STATE_DIR}/last-apply.json`;

const TURN_WAIT_MS = 20 * 60_000;
const PEER_READY_MS = 60_000;

export async function run(opts: RunOptions): Promise<RunResult> {
  const { inventory: inv, reporter, redactor } = opts;
  const check = opts.check ?? false;
  const stateDir = opts.stateDir ?? STATE_DIR;
  const hosts = selectHosts(inv, opts.limit);
  const roles = selectRoles(opts.roles, opts.tags);
  const mutex = new Mutex();
  const progress = new Progress();
  const results: TaskResult[] = [];
  const recap: Record<string, HostRecap> = {};
  const roundTrips: Record<string, number> = {};
  const transports = new Map<string, Transport>();
  /** Each host's facts: those of the run as they gather them, others' when a role asks (factsFrom). */
  const facts = new Map<string, Promise<Facts>>();
  const factsReady = new Map<string, (f: Facts | Error) => void>();
  const hostRoles = (h: Host) => roles.filter((r) => r.appliesTo(h, inv));
  const plan = hosts.map((h) => ({ host: h, roles: hostRoles(h).map((r) => r.name) }));
  for (const h of hosts) {
    recap[h.name] = { ok: 0, changed: 0, failed: 0, unreachable: 0, skipped: 0 };
    facts.set(h.name, new Promise<Facts>((res, rej) => factsReady.set(h.name, (f) => (f instanceof Error ? rej(f) : res(f)))));
    facts.get(h.name)!.catch(() => {});
  }
  reporter.start(plan);

  const emit = (r: TaskResult) => {
    const clean: TaskResult = { ...r, message: r.message && redactor.redact(r.message), diff: r.diff && redactor.redact(r.diff) };
    results.push(clean);
    recap[r.host][clean.status === 'ok' ? 'ok' : clean.status]++;
    reporter.result(clean);
  };
  const aborted = () => opts.signal?.aborted ?? false;
  const inRun = (h: Host) => hosts.some((x) => x.name === h.name);

  /** Facts of a host outside the run (read-only: one connection, one round trip). */
  function factsOf(h: Host): Promise<Facts> {
    let p = facts.get(h.name);
    if (!p) {
      p = (async () => {
        const t = await opts.connect(h);
        try {
          return await gatherFacts(t, marker(), interestOf(opts.roles, h, inv));
        } finally {
          await t.close().catch(() => {});
        }
      })();
      p.catch(() => {});
      facts.set(h.name, p);
    }
    return p;
  }

  async function runHost(host: Host, hostRoles: Role[]): Promise<void> {
    let t: Transport;
    try {
      t = await opts.connect(host);
    } catch (e) {
      recap[host.name].unreachable = 1;
      const msg = e instanceof UnreachableError ? e.message : `${host.name}: unreachable: ${(e as Error).message}`;
      factsReady.get(host.name)?.(new Error(msg));
      reporter.unreachable(host, redactor.redact(msg));
      return;
    }
    transports.set(host.name, t);
    try {
      let own: Facts;
      try {
        own = await gatherFacts(t, marker(), interestOf(opts.roles, host, inv));
        factsReady.get(host.name)?.(own);
      } catch (e) {
        factsReady.get(host.name)?.(e as Error);
        emit({ host: host.name, role: 'facts', task: 'gather facts', type: 'task', status: 'failed', message: (e as Error).message });
        return;
      }
      let failed = false;
      for (const role of hostRoles) {
        if (failed || aborted()) {
          reporter.roleStart(host, role.name, []);
          emit({
            host: host.name,
            role: role.name,
            task: '(role)',
            type: 'task',
            status: 'skipped',
            message: failed ? 'an earlier task failed on this host' : 'interrupted',
          });
          reporter.roleEnd(host, role.name);
          continue;
        }
        try {
          failed = !(await runRole(host, t, own, role));
        } catch (e) {
          // the connection to the host broke (it rebooted, its link went down): this host fails, the others go on
          emit({ host: host.name, role: role.name, task: '(connection)', type: 'task', status: 'failed', message: (e as Error).message });
          reporter.roleEnd(host, role.name);
          failed = true;
        }
        progress.roleDone(host.name, role.name);
      }
      // what this run did, for `hasetup status` (not in --check mode: nothing was done)
      if (!check) {
        const r = recap[host.name];
        const record = JSON.stringify({
          at: new Date().toISOString(),
          ok: r.ok,
          changed: r.changed,
          failed: r.failed,
          roles: hostRoles.map((x) => x.name),
          interrupted: aborted(),
        });
        await t.exec(`mkdir -p ${shq(stateDir)} && printf '%s\\n' ${shq(record)} > ${shq(`${stateDir}/last-apply.json`)}`).catch(() => {});
      }
    } finally {
      roundTrips[host.name] = t.roundTrips;
    }
  }

  /** What a role needs before it can start on a host: other hosts' roles done, other hosts' facts. */
  async function prerequisites(host: Host, role: Role): Promise<Map<string, Facts>> {
    for (const dep of role.after ?? []) {
      const others = hosts.filter(
        (h) => h.group === dep.group && h.name !== host.name && roles.some((r) => r.name === dep.role && r.appliesTo(h, inv)),
      );
      const ok = await progress.until(() => others.every((h) => progress.isPast(h.name, dep.role)), TURN_WAIT_MS, opts.signal);
      if (!ok && !aborted())
        throw new Error(`waited ${TURN_WAIT_MS / 60_000} min for role ${dep.role} on ${others.map((h) => h.name).join(', ')}`);
    }
    const peers = new Map<string, Facts>();
    for (const p of role.factsFrom?.(host, inv) ?? []) {
      if (p.name === host.name) continue;
      try {
        peers.set(p.name, await factsOf(p));
      } catch (e) {
        throw new Error(
          `needs the facts of ${p.name}${inRun(p) ? '' : ' (not in this run: contacted for its facts only)'}: ${(e as Error).message}`,
          { cause: e },
        );
      }
    }
    return peers;
  }

  /** Serial turns that failed somewhere: the other hosts of the group do not take them. */
  const failedTurns = new Map<string, string>();
  /** The rank each host waiting at a serial turn stated when it arrived (turn key -> host -> rank). */
  const waitingRanks = new Map<string, Map<string, number>>();

  /**
   * One host's turn in a serial group: after every peer of a lower rank took the same turn or is past
   * the role, under the group's lock, once every peer answers peerReady. A turn that failed on one
   * host is not taken by the others (the LBs stop at the first LB that fails).
   *
   * Ranks are read once, when a host arrives; a peer that arrived first is judged by the rank it
   * stated then (not by a fresh reading), so that two hosts never wait for each other.
   */
  async function takeTurn(
    host: Host,
    t: Transport,
    role: string,
    turn: string,
    serial: Serial,
    fn: () => Promise<ExecResult>,
    succeeded: (r: ExecResult) => boolean,
  ): Promise<ExecResult> {
    const peers = hosts.filter((p) => p.group === serial.group && p.name !== host.name);
    const key = `${serial.group}:${role}:${turn}`;
    const waiting = waitingRanks.get(key) ?? waitingRanks.set(key, new Map()).get(key)!;
    if (serial.rank) {
      const rankOf = async (tr: Transport | undefined) => {
        if (!tr) return Infinity;
        const r = await tr.exec(serial.rank as string).catch(() => ({ code: 1, stdout: '' }));
        const n = Number(r.stdout.trim());
        return r.code === 0 && Number.isFinite(n) ? n : 0;
      };
      const mine = await rankOf(t);
      const probed = new Map<string, number>();
      for (const p of peers)
        if (!waiting.has(p.name) && !progress.isPast(p.name, role, turn)) probed.set(p.name, await rankOf(transports.get(p.name)));
      waiting.set(host.name, mine);
      progress.changed();
      const lower = (p: Host) => (waiting.get(p.name) ?? probed.get(p.name) ?? Infinity) < mine;
      await progress.until(() => peers.every((p) => progress.isPast(p.name, role, turn) || !lower(p)), TURN_WAIT_MS, opts.signal);
    }
    try {
      return await mutex.run(`serial:${serial.group}`, async () => {
        const failedOn = failedTurns.get(key);
        if (failedOn)
          return {
            code: 1,
            stdout: '',
            stderr: `not run: it failed on ${failedOn}, and the ${serial.group} hosts change one at a time, stopping at the first failure`,
          };
        if (serial.peerReady) await waitPeers(peers, serial.peerReady);
        const r = await fn();
        if (!succeeded(r)) failedTurns.set(key, host.name);
        return r;
      });
    } finally {
      waiting.delete(host.name);
      progress.turnTaken(host.name, turn);
    }
  }

  /** Runs one role on one host; false when something failed. */
  async function runRole(host: Host, t: Transport, facts: Facts, role: Role): Promise<boolean> {
    const base = { host: host.name, role: role.name };
    let tasks: Task[];
    let handlers: Handler[];
    try {
      const peers = await prerequisites(host, role);
      const ctx = roleContext(role, host, inv, facts, peers);
      tasks = role.tasks(ctx);
      handlers = role.handlers?.(ctx) ?? [];
      for (const task of tasks)
        for (const n of task.notify ?? [])
          if (!handlers.some((h) => h.name === n)) throw new Error(`task "${task.name}" notifies unknown handler "${n}"`);
    } catch (e) {
      reporter.roleStart(host, role.name, []);
      emit({ ...base, task: '(prepare)', type: 'task', status: 'failed', message: `role ${role.name}: ${(e as Error).message}` });
      reporter.roleEnd(host, role.name);
      return false;
    }
    reporter.roleStart(
      host,
      role.name,
      tasks.map((x) => x.name),
    );
    const pendingFile = `${stateDir}/pending/${role.name}`;
    const mark = marker();
    let ok = true;
    const notified = new Set<string>();
    const skipRest = (from: number, message: string) => {
      for (let j = from; j < tasks.length; j++) emit({ ...base, task: tasks[j].name, type: 'task', status: 'skipped', message });
    };

    // One round trip: every task's state, and the handlers an interrupted earlier run left pending.
    const first = await t.exec(`${probeBatch(tasks, 0, mark)}\necho ${mark}pending\ncat ${shq(pendingFile)} 2>/dev/null; true`);
    let states = splitSections(first.stdout, mark);
    for (const n of (states.pending ?? '')
      .split('\n')
      .map((s) => s.trim())
      .filter(Boolean))
      if (handlers.some((h) => h.name === n)) notified.add(n);

    let earlierChange = false;
    for (let i = 0; i < tasks.length; i++) {
      const task = tasks[i];
      if (aborted()) {
        skipRest(i, 'interrupted');
        ok = false;
        break;
      }
      let p: Plan;
      try {
        const state = states[String(i)];
        if (state === undefined) throw new Error('the host returned no state for this task');
        p = task.op.plan(state, { facts, earlierChange });
      } catch (e) {
        const msg = e instanceof PlanError ? e.message : `cannot plan ${task.op.kind} ${task.op.subject}: ${(e as Error).message}`;
        emit({ ...base, task: task.name, type: 'task', status: 'failed', message: msg });
        skipRest(i + 1, 'an earlier task failed');
        ok = false;
        break;
      }
      if (!p.changed) {
        emit({ ...base, task: task.name, type: 'task', status: 'ok', message: p.note });
        continue;
      }
      earlierChange = true;
      if (check) {
        for (const n of task.notify ?? []) notified.add(n);
        emit({ ...base, task: task.name, type: 'task', status: 'changed', message: `would change: ${p.why}`, diff: p.diff });
        continue;
      }
      // Make the change; record the handlers it notifies on the host in the same step (so an
      // interrupted run still fires them next time); probe the remaining tasks again.
      const persist = (task.notify ?? []).length
        ? `mkdir -p ${shq(`${stateDir}/pending`)} && printf '%s\\n' ${(task.notify ?? []).map(shq).join(' ')} >> ${shq(pendingFile)}`
        : 'true';
      const script = `{ (\n${p.script}\n) ; } 1>&2\nrc=$?\necho ${mark}rc\necho $rc\nif [ $rc -eq 0 ]; then\n${persist}\n${probeBatch(tasks, i + 1, mark)}\nfi`;
      const change = p;
      const exec = () => t.exec(script, change.stdin);
      const rcOf = (x: ExecResult) => Number((splitSections(x.stdout, mark).rc ?? '').trim() || x.code || 255);
      const r = task.serial
        ? await takeTurn(host, t, role.name, `task:${task.name}`, task.serial, exec, (x) => rcOf(x) === 0)
        : await exec();
      const sec = splitSections(r.stdout, mark);
      const rc = rcOf(r);
      if (rc !== 0) {
        const out = r.stderr.trim().split('\n').slice(-15).join('\n');
        emit({
          ...base,
          task: task.name,
          type: 'task',
          status: 'failed',
          message: `${p.why}: exit ${rc}${out ? `: ${out}` : ''}`,
          diff: p.diff,
        });
        skipRest(i + 1, 'an earlier task failed');
        ok = false;
        break;
      }
      if (p.confirm) {
        const cut = await confirmByReconnect(host, t, p.confirm);
        if (cut) {
          emit({ ...base, task: task.name, type: 'task', status: 'failed', message: cut, diff: p.diff });
          skipRest(i + 1, 'an earlier task failed');
          ok = false;
          break;
        }
      }
      for (const n of task.notify ?? []) notified.add(n);
      emit({ ...base, task: task.name, type: 'task', status: 'changed', message: p.why, diff: p.diff });
      states = { ...states, ...sec };
    }

    // Handlers: once each, in their declared order, after the tasks, even after a failure (but not
    // after an interruption: they stay recorded on the host and the next run fires them).
    for (const h of handlers.filter((x) => notified.has(x.name))) {
      if (aborted() && !check) {
        emit({
          ...base,
          task: h.name,
          type: 'handler',
          status: 'skipped',
          message: 'interrupted: still pending on the host, the next run fires it',
        });
        continue;
      }
      if (check) {
        emit({ ...base, task: h.name, type: 'handler', status: 'changed', message: 'would run (notified)' });
        continue;
      }
      const clear = `if [ -f ${shq(pendingFile)} ]; then grep -vxF ${shq(h.name)} ${shq(pendingFile)} > ${shq(pendingFile)}.new; mv -f ${shq(pendingFile)}.new ${shq(pendingFile)}; fi`;
      const exec = () => t.exec(`{ (\n${h.script}\n) ; } 1>&2 && ${clear}`);
      const r = h.serial ? await takeTurn(host, t, role.name, `handler:${h.name}`, h.serial, exec, (x) => x.code === 0) : await exec();
      if (r.code === 0) emit({ ...base, task: h.name, type: 'handler', status: 'changed', message: 'notified' });
      else {
        ok = false;
        emit({
          ...base,
          task: h.name,
          type: 'handler',
          status: 'failed',
          message: `exit ${r.code}: ${r.stderr.trim().split('\n').slice(-15).join('\n')}`,
        });
      }
    }
    reporter.roleEnd(host, role.name);
    return ok;
  }

  /**
   * After a change that could cut the controller off: a new connection must get through and
   * confirm it. Returns null when confirmed, or why it failed once the host's own rollback fired.
   */
  async function confirmByReconnect(
    host: Host,
    t: Transport,
    c: { script: string; rollbackAfterSec: number; rolledBack: string },
  ): Promise<string | null> {
    let why: string;
    try {
      const t2 = await opts.connect(host);
      try {
        const r = await t2.exec(c.script);
        if (r.code === 0) return null;
        why = `confirmation failed: ${r.stderr.trim()}`;
      } finally {
        await t2.close();
      }
    } catch (e) {
      why = (e as Error).message;
    }
    // Cut off: the rollback armed by the change fires by itself; wait for it on the old session.
    const deadline = Date.now() + (c.rollbackAfterSec + 15) * 1000;
    let rolledBack = false;
    while (Date.now() < deadline) {
      const r = await t.exec(c.rolledBack).catch(() => ({ code: 1 }));
      if (r.code === 0) {
        rolledBack = true;
        break;
      }
      await new Promise((res) => setTimeout(res, 1000));
    }
    return rolledBack
      ? `the change cut new SSH connections from the controller (${why}): rolled back by the host itself`
      : `the change cut new SSH connections from the controller (${why}) and the rollback was not seen within ${c.rollbackAfterSec + 15}s`;
  }

  /** Waits (at most a minute) until each reachable peer passes peerReady. */
  async function waitPeers(peers: Host[], peerReady: string): Promise<void> {
    for (const peer of peers) {
      const pt = transports.get(peer.name);
      if (!pt) continue;
      const deadline = Date.now() + PEER_READY_MS;
      for (;;) {
        const r = await pt.exec(peerReady).catch(() => ({ code: 1 }));
        if (r.code === 0 || Date.now() > deadline) break;
        await new Promise((res) => setTimeout(res, 250));
      }
    }
  }

  try {
    await Promise.all(
      hosts.map(async (h) => {
        try {
          await runHost(h, hostRoles(h));
        } finally {
          progress.hostDone(h.name);
        }
      }),
    );
  } finally {
    await Promise.all([...transports.values()].map((t) => t.close().catch(() => {})));
  }
  const result: RunResult = { hosts: recap, results, roundTrips, check, interrupted: aborted() };
  reporter.end(result);
  return result;
}

export function failedRun(r: RunResult): boolean {
  return Object.values(r.hosts).some((h) => h.failed > 0 || h.unreachable > 0) || r.interrupted;
}
