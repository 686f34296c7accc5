// One step on its own, against this machine's shell: a task planned from its probe, changed in one
// round trip that records its handlers and probes the tasks after it; a handler run once.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { command, file, PlanError, type Operation } from '../../../cli/engine/ops.ts';
import { splitSections, type Facts } from '../../../cli/engine/facts.ts';
import type { Task } from '../../../cli/engine/role.ts';
import { marker } from '../../../cli/engine/shell.ts';
import { planTask, probeBatch, stepHandler, stepTask, type TaskStep } from '../../../cli/engine/step.ts';
import { LocalTransport } from '../../../cli/engine/transport.ts';

const facts = { hostname: 'h1', container: false } as unknown as Facts;

function setup() {
  const root = mkdtempSync(join(tmpdir(), 'hasetup-step-'));
  return { root, cleanup: () => rmSync(root, { recursive: true, force: true }) };
}

/** The tasks' states as the runner's first round trip reads them. */
async function probed(t: LocalTransport, tasks: Task[], mark: string) {
  return splitSections((await t.exec(probeBatch(tasks, 0, mark))).stdout, mark);
}

function step(t: LocalTransport, tasks: Task[], index: number, states: Record<string, string>, mark: string, root: string): TaskStep {
  return {
    tasks,
    index,
    states,
    facts,
    earlierChange: false,
    check: false,
    mark,
    pendingFile: join(root, 'state/pending/role'),
    exec: (script, stdin) => t.exec(script, stdin),
    confirm: async () => null,
  };
}

test('planTask: a missing state, a PlanError as it is, any other error named with its operation', () => {
  const op = (plan: Operation['plan']): Task => ({ name: 't', op: { kind: 'thing', subject: '/x', probe: () => 'true', plan } });
  assert.deepEqual(
    planTask(
      op(() => ({ changed: false })),
      undefined,
      facts,
      false,
    ),
    {
      failed: 'cannot plan thing /x: the host returned no state for this task',
    },
  );
  const planError = op(() => {
    throw new PlanError('unit nope.service does not exist');
  });
  assert.deepEqual(planTask(planError, '', facts, false), { failed: 'unit nope.service does not exist' });
  const other = op(() => {
    throw new Error('bad state');
  });
  assert.deepEqual(planTask(other, '', facts, false), { failed: 'cannot plan thing /x: bad state' });
  assert.deepEqual(
    planTask(
      op(() => ({ changed: false, note: 'n' })),
      'x',
      facts,
      false,
    ),
    { changed: false, note: 'n' },
  );
});

test('a change: made, its handlers recorded on the host, the tasks after it probed again in the same round trip', async () => {
  const { root, cleanup } = setup();
  try {
    const t = new LocalTransport();
    const mark = marker();
    const conf = join(root, 'app.conf');
    const tasks: Task[] = [
      { name: 'config', op: file({ path: conf, content: 'a=1\n' }), notify: ['restart', 'reload'] },
      { name: 'after', op: command({ script: 'true', unless: `test -e ${conf}`, describe: 'needs the config' }) },
    ];
    const states = await probed(t, tasks, mark);
    const o = await stepTask(step(t, tasks, 0, states, mark, root));
    assert.equal(o.status, 'changed');
    if (o.status !== 'changed') return;
    assert.equal(o.message, 'file absent');
    assert.deepEqual(o.notify, ['restart', 'reload']);
    assert.equal(readFileSync(conf, 'utf8'), 'a=1\n');
    assert.equal(readFileSync(join(root, 'state/pending/role'), 'utf8'), 'restart\nreload\n');
    assert.equal(o.states.rc, '0');
    assert.notEqual(o.states['1'], states['1'], 'the task after it sees the new state');
    const next = await stepTask(step(t, tasks, 1, { ...states, ...o.states }, mark, root));
    assert.equal(next.status, 'ok');
    assert.equal(t.roundTrips, 2, 'one probe batch, one change');
  } finally {
    cleanup();
  }
});

test('--check: the change it would make, nothing done on the host', async () => {
  const { root, cleanup } = setup();
  try {
    const t = new LocalTransport();
    const mark = marker();
    const tasks: Task[] = [{ name: 'config', op: file({ path: join(root, 'app.conf'), content: 'a=1\n' }), notify: ['restart'] }];
    const o = await stepTask({ ...step(t, tasks, 0, await probed(t, tasks, mark), mark, root), check: true });
    assert.equal(o.status, 'changed');
    assert.equal(o.message, 'would change: file absent');
    assert.ok(!existsSync(join(root, 'app.conf')) && !existsSync(join(root, 'state')));
  } finally {
    cleanup();
  }
});

test('a change that fails: its exit and the end of its stderr, no handler recorded', async () => {
  const { root, cleanup } = setup();
  try {
    const t = new LocalTransport();
    const mark = marker();
    const tasks: Task[] = [
      {
        name: 'bad',
        op: command({ script: 'echo first >&2; echo why it failed >&2; exit 3', creates: join(root, 'never') }),
        notify: ['restart'],
      },
    ];
    const judged: number[] = [];
    const o = await stepTask({
      ...step(t, tasks, 0, await probed(t, tasks, mark), mark, root),
      exec: async (script, stdin, succeeded) => {
        const r = await t.exec(script, stdin);
        judged.push(succeeded(r) ? 0 : 1);
        return r;
      },
    });
    assert.equal(o.status, 'failed');
    assert.match(o.message, /: exit 3: first\nwhy it failed$/);
    assert.deepEqual(judged, [1], 'the serial turn is told it failed');
    assert.ok(!existsSync(join(root, 'state/pending/role')));
  } finally {
    cleanup();
  }
});

test('a change whose round trip lost its exit status: probed again, done when the host says so, else run once more', async () => {
  const { root, cleanup } = setup();
  try {
    const t = new LocalTransport();
    const mark = marker();
    const made = join(root, 'made');
    // the work is done, then the shell dies before its exit status (as when a slow host's SSH channel closes)
    const done: Task[] = [
      { name: 'install', op: command({ script: `touch ${made}; kill -9 $$`, creates: made, describe: 'install' }), notify: ['restart'] },
      { name: 'after', op: command({ script: 'true', unless: `test -e ${made}`, describe: 'needs it' }) },
    ];
    const o = await stepTask(step(t, done, 0, await probed(t, done, mark), mark, root));
    assert.equal(o.status, 'changed');
    if (o.status !== 'changed') return;
    assert.equal(o.message, `${made} missing: the change's shell was killed (SIGKILL); probed again: done`);
    assert.deepEqual(o.notify, ['restart'], 'its handlers notified as after any change');
    assert.equal(o.states['1']?.trim(), 'missing\npass', 'the tasks after it see the new state');
    assert.equal(t.roundTrips, 3, 'the probe, the lost change, the probe again');

    // not done the first time (the shell died first): run once more, and that run decides
    const flag = join(root, 'tried');
    const later = join(root, 'later');
    const once: Task[] = [
      {
        name: 'second time',
        op: command({ script: `if [ -e ${flag} ]; then touch ${later}; else touch ${flag}; kill -9 $$; fi`, creates: later }),
      },
    ];
    const o2 = await stepTask(step(t, once, 0, await probed(t, once, mark), mark, root));
    assert.equal(o2.status, 'changed');
    assert.match(o2.message, /: the change's shell was killed \(SIGKILL\); probed again and run again: done$/);
    assert.ok(existsSync(later));

    // lost twice: failed, saying so
    const never: Task[] = [{ name: 'never', op: command({ script: 'kill -9 $$', creates: join(root, 'never') }) }];
    const o3 = await stepTask(step(t, never, 0, await probed(t, never, mark), mark, root));
    assert.equal(o3.status, 'failed');
    assert.match(o3.message, /killed \(SIGKILL\); probed again and run again: the change's shell was killed \(SIGKILL\) again$/);
  } finally {
    cleanup();
  }
});

test("a change that cut the controller off fails with the reconnect check's reason", async () => {
  const { root, cleanup } = setup();
  try {
    const t = new LocalTransport();
    const mark = marker();
    const confirmed: string[] = [];
    const op: Operation = {
      kind: 'firewall',
      subject: 'rules',
      probe: () => 'echo old',
      plan: () => ({
        changed: true,
        script: 'true',
        why: 'rules differ',
        confirm: { script: 'ok', rollbackAfterSec: 1, rolledBack: 'rb' },
      }),
    };
    const tasks: Task[] = [{ name: 'rules', op }];
    const o = await stepTask({
      ...step(t, tasks, 0, await probed(t, tasks, mark), mark, root),
      confirm: async (c) => (confirmed.push(c.script), 'the change cut new SSH connections'),
    });
    assert.deepEqual(o, { status: 'failed', message: 'the change cut new SSH connections', diff: undefined });
    assert.deepEqual(confirmed, ['ok']);
  } finally {
    cleanup();
  }
});

test('a handler: run and taken off the pending file; failed with its exit; not run in --check or once interrupted', async () => {
  const { root, cleanup } = setup();
  try {
    const t = new LocalTransport();
    const pendingFile = join(root, 'pending');
    writeFileSync(pendingFile, 'restart\nreload\n');
    const exec = (script: string) => t.exec(script);
    const restart = { name: 'restart', script: `echo restarted >> ${root}/log` };
    assert.deepEqual(await stepHandler(restart, { check: false, aborted: false, pendingFile, exec }), {
      status: 'changed',
      message: 'notified',
    });
    assert.equal(readFileSync(join(root, 'log'), 'utf8'), 'restarted\n');
    assert.equal(readFileSync(pendingFile, 'utf8'), 'reload\n');
    const reload = { name: 'reload', script: 'echo cannot reload >&2; exit 2' };
    assert.deepEqual(await stepHandler(reload, { check: false, aborted: false, pendingFile, exec }), {
      status: 'failed',
      message: 'exit 2: cannot reload',
    });
    assert.equal(readFileSync(pendingFile, 'utf8'), 'reload\n', 'still pending');
    assert.deepEqual(await stepHandler(restart, { check: true, aborted: true, pendingFile, exec }), {
      status: 'changed',
      message: 'would run (notified)',
    });
    assert.deepEqual(await stepHandler(restart, { check: false, aborted: true, pendingFile, exec }), {
      status: 'skipped',
      message: 'interrupted: still pending on the host, the next run fires it',
    });
    assert.equal(readFileSync(join(root, 'log'), 'utf8'), 'restarted\n');
  } finally {
    cleanup();
  }
});
