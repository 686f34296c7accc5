// How a run is shown: a live listr2 tree (host > role > task) on a terminal, plain lines when
// stdout is not a TTY or NO_COLOR/CI is set, or JSON (--json). Each ends with a recap per host.
import { Listr, type ListrTask } from 'listr2';
import type { Host } from '../../inventory/types.ts';
import type { Reporter, RunResult, TaskResult, HostRecap } from './runner.ts';

type Write = (s: string) => void;

export function recapLines(hosts: Record<string, HostRecap>): string[] {
  const names = Object.keys(hosts);
  const w = Math.max(4, ...names.map((n) => n.length));
  return names.map((n) => {
    const r = hosts[n];
    return `${n.padEnd(w)}  ok=${r.ok}  changed=${r.changed}  failed=${r.failed}  unreachable=${r.unreachable}  skipped=${r.skipped}`;
  });
}

function indent(text: string, pad = '    '): string {
  return text
    .replace(/\n$/, '')
    .split('\n')
    .map((l) => pad + l)
    .join('\n');
}

/** One line per task result; diffs under the changed task when asked for. */
export class PlainReporter implements Reporter {
  constructor(
    private readonly showDiff: boolean,
    private readonly write: Write = (s) => process.stdout.write(s),
  ) {}
  start(plan: { host: Host; roles: string[] }[]): void {
    for (const p of plan) this.write(`${p.host.name}: roles ${p.roles.join(', ') || '(none)'}\n`);
  }
  unreachable(_host: Host, message: string): void {
    this.write(`UNREACHABLE ${message}\n`);
  }
  roleStart(): void {}
  roleEnd(): void {}
  result(r: TaskResult): void {
    const what = r.type === 'handler' ? `handler ${r.task}` : r.task;
    const label = r.status === 'changed' && r.message?.startsWith('would ') ? 'would change' : r.status;
    this.write(`${r.host} | ${r.role} | ${what}: ${label}${r.message && r.status !== 'ok' ? ` (${r.message.split('\n')[0]})` : ''}\n`);
    if (r.status === 'failed' && r.message && r.message.includes('\n'))
      this.write(`${indent(r.message.split('\n').slice(1).join('\n'))}\n`);
    if (this.showDiff && r.diff && (r.status === 'changed' || r.status === 'failed')) this.write(`${indent(r.diff)}\n`);
  }
  end(run: RunResult): void {
    this.write(`\nRECAP${run.check ? ' (check mode: nothing was changed)' : ''}${run.interrupted ? ' (interrupted)' : ''}\n`);
    for (const l of recapLines(run.hosts)) this.write(`${l}\n`);
  }
}

/** Machine-readable: every result, then the recap as {"hosts": {NAME: {...}}}. */
export class JsonReporter implements Reporter {
  constructor(private readonly write: Write = (s) => process.stdout.write(s)) {}
  private readonly unreachableHosts: Record<string, string> = {};
  start(): void {}
  unreachable(host: Host, message: string): void {
    this.unreachableHosts[host.name] = message;
  }
  roleStart(): void {}
  roleEnd(): void {}
  result(): void {}
  end(run: RunResult): void {
    this.write(
      `${JSON.stringify(
        {
          check: run.check,
          interrupted: run.interrupted,
          results: run.results,
          unreachable: this.unreachableHosts,
          roundTrips: run.roundTrips,
          hosts: run.hosts,
        },
        null,
        2,
      )}\n`,
    );
  }
}

class Deferred<T> {
  promise: Promise<T>;
  resolve!: (v: T) => void;
  constructor() {
    this.promise = new Promise<T>((r) => (this.resolve = r));
  }
}

/** The live tree. The engine runs on its own; listr2 tasks wait for its events. */
export class ListrReporter implements Reporter {
  private roleStarts = new Map<string, Deferred<string[]>>();
  private taskResults = new Map<string, TaskResult[]>();
  private taskWaiters = new Map<string, Deferred<void>>();
  private hostGone = new Map<string, Deferred<string | null>>();
  private listr?: Promise<unknown>;
  private diffs: TaskResult[] = [];
  constructor(private readonly showDiff: boolean) {}

  private key(host: string, role: string) {
    return `${host}\u0000${role}`;
  }
  private roleStarted(host: string, role: string): Deferred<string[]> {
    const k = this.key(host, role);
    let d = this.roleStarts.get(k);
    if (!d) this.roleStarts.set(k, (d = new Deferred()));
    return d;
  }
  private waitTask(host: string, role: string, index: number): Promise<TaskResult | undefined> {
    const k = this.key(host, role);
    const list = () => (this.taskResults.get(k) ?? []).filter((r) => r.type === 'task');
    const tryNow = () => list()[index];
    return new Promise((resolve) => {
      const check = () => {
        const r = tryNow();
        if (r) return resolve(r);
        const w = new Deferred<void>();
        this.taskWaiters.set(k, w);
        void w.promise.then(check);
      };
      check();
    });
  }

  start(plan: { host: Host; roles: string[] }[]): void {
    const hostTasks: ListrTask[] = plan.map(({ host, roles }) => {
      const gone = new Deferred<string | null>();
      this.hostGone.set(host.name, gone);
      return {
        title: host.name,
        task: (_ctx, hostTask) =>
          hostTask.newListr(
            roles.map((role) => ({
              title: role,
              task: async (_c, roleTask) => {
                const started = await Promise.race([this.roleStarted(host.name, role).promise, gone.promise.then((m) => m)]);
                if (!Array.isArray(started)) {
                  roleTask.skip(started ?? 'host unreachable');
                  return;
                }
                return roleTask.newListr(
                  started.map((name, i) => ({
                    title: name,
                    task: async (_x, tt) => {
                      const r = await this.waitTask(host.name, role, i);
                      if (!r) return;
                      if (r.status === 'failed') throw new Error(`${name}: ${r.message ?? 'failed'}`);
                      if (r.status === 'skipped') tt.skip(`${name}: skipped`);
                      else tt.title = `${name}: ${r.status === 'changed' && r.message?.startsWith('would ') ? 'would change' : r.status}`;
                    },
                  })),
                  { concurrent: false, exitOnError: true },
                );
              },
            })),
            { concurrent: false, exitOnError: true },
          ),
      };
    });
    this.listr = new Listr(hostTasks, { concurrent: true, exitOnError: false, rendererOptions: { collapseSubtasks: false } })
      .run()
      .catch(() => {});
  }
  unreachable(host: Host, message: string): void {
    this.hostGone.get(host.name)?.resolve(message);
  }
  roleStart(host: Host, role: string, tasks: string[]): void {
    this.roleStarted(host.name, role).resolve(tasks);
  }
  result(r: TaskResult): void {
    const k = this.key(r.host, r.role);
    const list = this.taskResults.get(k) ?? [];
    list.push(r);
    this.taskResults.set(k, list);
    this.taskWaiters.get(k)?.resolve();
    if ((this.showDiff && r.diff) || r.type === 'handler' || r.status === 'failed') this.diffs.push(r);
  }
  roleEnd(): void {}
  async finish(run: RunResult): Promise<void> {
    // Unblock anything still waiting (skipped roles of failed hosts), then let the tree settle.
    for (const d of this.roleStarts.values()) d.resolve([]);
    for (const d of this.hostGone.values()) d.resolve(null);
    await this.listr;
    const plain = new PlainReporter(this.showDiff);
    for (const r of this.diffs) plain.result(r);
    plain.end(run);
  }
  end(): void {}
}
