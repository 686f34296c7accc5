// One step of a role on a host: a task planned from the state its probe printed and, when the host
// is not right, changed in one round trip that also records the handlers it notifies (so that an
// interrupted run still fires them next time) and probes the tasks after it again (their state may
// depend on this change); or a notified handler run once. A step says what happened; the runner
// reports it and decides what comes next.
import { dirname } from 'node:path/posix';
import { splitSections, type Facts } from './facts.ts';
import { PlanError, type Plan } from './ops.ts';
import type { Confirm } from './reconnect.ts';
import type { Handler, Task } from './role.ts';
import { shq } from './shell.ts';
import type { ExecResult } from './transport.ts';

/** What a task's step came to. A changed task carries the handlers it notifies and the tasks' new states. */
export type TaskOutcome =
  | { status: 'ok'; message?: string }
  | { status: 'changed'; message: string; diff?: string; notify: string[]; states: Record<string, string> }
  | { status: 'failed'; message: string; diff?: string };

export interface TaskStep {
  tasks: Task[];
  /** The task of this step, by its index in `tasks`. */
  index: number;
  /** The probed states of the tasks, by index (and the markers' other sections). */
  states: Record<string, string>;
  facts: Facts;
  /** True when an earlier task of this host changed (or would change, in --check mode). */
  earlierChange: boolean;
  check: boolean;
  /** The marker of this role's round trips (sections of the output). */
  mark: string;
  /** Where the host keeps the handlers notified and not yet run for this role. */
  pendingFile: string;
  /** Runs the change on the host (in the task's serial turn, when it has one); `succeeded` judges its answer. */
  exec(script: string, stdin: string | Buffer | undefined, succeeded: (r: ExecResult) => boolean): Promise<ExecResult>;
  /** After a change that could cut the controller off: null once a new connection confirmed it, or why not. */
  confirm(c: Confirm): Promise<string | null>;
}

/** The probes of tasks[from..], each in a section of its own ("<mark><index>"). */
export function probeBatch(tasks: Task[], from: number, mark: string): string {
  const parts: string[] = [];
  for (let i = from; i < tasks.length; i++) parts.push(`echo ${mark}${i}\n{ ${tasks[i].op.probe()}\n} 2>/dev/null </dev/null`);
  return parts.join('\n');
}

/** The plan of a task from its probed state; a task that cannot be planned fails with the reason. */
export function planTask(task: Task, state: string | undefined, facts: Facts, earlierChange: boolean): Plan | { failed: string } {
  try {
    if (state === undefined) throw new Error('the host returned no state for this task');
    return task.op.plan(state, { facts, earlierChange });
  } catch (e) {
    return { failed: e instanceof PlanError ? e.message : `cannot plan ${task.op.kind} ${task.op.subject}: ${(e as Error).message}` };
  }
}

/**
 * The change's round trip: the change (its output to stderr), its exit in section "rc", then, when it
 * succeeded, the handlers it notifies appended to the pending file and the probes of the tasks after it.
 */
export function changeScript(change: string, notify: string[], pendingFile: string, probesAfter: string, mark: string): string {
  const persist = notify.length
    ? `mkdir -p ${shq(dirname(pendingFile))} && printf '%s\\n' ${notify.map(shq).join(' ')} >> ${shq(pendingFile)}`
    : 'true';
  return `{ (\n${change}\n) ; } 1>&2\nrc=$?\necho ${mark}rc\necho $rc\nif [ $rc -eq 0 ]; then\n${persist}\n${probesAfter}\nfi`;
}

/** The change's exit status, from its "rc" section (or the round trip's own exit when the section is missing). */
export const changeExit = (r: ExecResult, mark: string): number => Number((splitSections(r.stdout, mark).rc ?? '').trim() || r.code || 255);

/** The last lines of a failed script's stderr, for its message. */
export const lastLines = (stderr: string): string => stderr.trim().split('\n').slice(-15).join('\n');

/** Why a change's round trip came back without its exit status, for a message. */
export function lostWhy(r: ExecResult): string {
  const sig = r.lost?.signal;
  return sig ? `the change's shell was killed (SIG${sig.replace(/^SIG/, '')})` : 'the SSH channel closed before the exit status came back';
}

/**
 * One task: plan it, and make the change when the host is not right (not in --check mode). A change
 * whose round trip came back without its exit status (its channel lost, its shell killed) is judged by
 * the host's state: the task is probed again, and it is done when the probe says so; otherwise the
 * change runs once more, and that run decides (every operation is written to be run again).
 * `lost` is set on that second pass: what happened to the first round trip.
 */
export async function stepTask(s: TaskStep, lost?: string): Promise<TaskOutcome> {
  const task = s.tasks[s.index];
  const notify = task.notify ?? [];
  const p = planTask(task, s.states[String(s.index)], s.facts, s.earlierChange);
  if ('failed' in p) return { status: 'failed', message: lost ? `${lost}; probed again: ${p.failed}` : p.failed };
  if (!p.changed) {
    if (!lost) return { status: 'ok', message: p.note };
    // the lost round trip made the change: its handlers are notified as after any change
    return { status: 'changed', message: `${lost}; probed again: done`, notify, states: s.states };
  }
  if (s.check) return { status: 'changed', message: `would change: ${p.why}`, diff: p.diff, notify, states: {} };
  const script = changeScript(p.script, notify, s.pendingFile, probeBatch(s.tasks, s.index + 1, s.mark), s.mark);
  const r = await s.exec(script, p.stdin, (x) => changeExit(x, s.mark) === 0);
  if (r.lost && splitSections(r.stdout, s.mark).rc === undefined) {
    const why = `${p.why}: ${lostWhy(r)}`;
    if (lost) return { status: 'failed', message: `${lost}; probed again and run again: ${lostWhy(r)} again`, diff: p.diff };
    const again = await s.exec(probeBatch(s.tasks, s.index, s.mark), undefined, (x) => x.code === 0);
    return stepTask({ ...s, states: splitSections(again.stdout, s.mark) }, why);
  }
  const rc = changeExit(r, s.mark);
  if (rc !== 0) {
    const out = lastLines(r.stderr);
    const what = lost ? `${lost}; probed again and run again: exit ${rc}` : `${p.why}: exit ${rc}`;
    return { status: 'failed', message: `${what}${out ? `: ${out}` : ''}`, diff: p.diff };
  }
  if (p.confirm) {
    const cut = await s.confirm(p.confirm);
    if (cut) return { status: 'failed', message: cut, diff: p.diff };
  }
  const message = lost ? `${lost}; probed again and run again: done` : p.why;
  return { status: 'changed', message, diff: p.diff, notify, states: splitSections(r.stdout, s.mark) };
}

/** What a handler's step came to. */
export interface HandlerOutcome {
  status: 'changed' | 'skipped' | 'failed';
  message: string;
}

export interface HandlerStep {
  check: boolean;
  /** Interrupted (SIGINT): the handler stays pending on the host for the next run. */
  aborted: boolean;
  pendingFile: string;
  /** Runs the handler on the host (in its serial turn, when it has one); `succeeded` judges its answer. */
  exec(script: string, succeeded: (r: ExecResult) => boolean): Promise<ExecResult>;
}

/** sh: takes one handler off the host's pending file. */
export function clearPending(pendingFile: string, handler: string): string {
  const f = shq(pendingFile);
  return `if [ -f ${f} ]; then grep -vxF ${shq(handler)} ${f} > ${f}.new; mv -f ${f}.new ${f}; fi`;
}

/** One notified handler: run once, then taken off the pending file (not run in --check mode, nor once interrupted). */
export async function stepHandler(h: Handler, s: HandlerStep): Promise<HandlerOutcome> {
  if (s.aborted && !s.check) return { status: 'skipped', message: 'interrupted: still pending on the host, the next run fires it' };
  if (s.check) return { status: 'changed', message: 'would run (notified)' };
  const script = `{ (\n${h.script}\n) ; } 1>&2 && ${clearPending(s.pendingFile, h.name)}`;
  let r = await s.exec(script, (x) => x.code === 0);
  // no exit status (its channel lost, its shell killed): a handler (a restart, a reload) is run once more
  let again = '';
  if (r.lost) {
    again = ` (${lostWhy(r)}; run again)`;
    r = await s.exec(script, (x) => x.code === 0);
  }
  if (r.code === 0) return { status: 'changed', message: `notified${again}` };
  return { status: 'failed', message: r.lost ? `${lostWhy(r)}, twice` : `exit ${r.code}${again}: ${lastLines(r.stderr)}` };
}
