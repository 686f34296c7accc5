// Serial turns on their own: ranks, the group's lock, peers that must answer first, a failed turn
// that the others do not take. Transports are scripted: each answers what its host would print.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Progress, rankOf, SerialTurns } from '../../../cli/engine/turns.ts';
import type { ExecResult, Transport } from '../../../cli/engine/transport.ts';
import type { Host } from '../../../inventory/types.ts';
import { fixtureInventory } from '../../helpers/fixture-role.ts';

/** A transport whose scripts get `answer`'s reply; it remembers what it was asked. */
function scripted(answer: (script: string) => Partial<ExecResult> | Error): Transport & { asked: string[] } {
  const asked: string[] = [];
  return {
    target: 'scripted',
    roundTrips: 0,
    asked,
    async exec(script: string) {
      asked.push(script);
      const a = answer(script);
      if (a instanceof Error) throw a;
      return { code: 0, stdout: '', stderr: '', ...a };
    },
    async close() {},
  };
}

function twoLbs() {
  const inv = fixtureInventory([
    { name: 'lb01', address: '127.0.0.1' },
    { name: 'lb02', address: '127.0.0.1' },
  ]);
  for (const h of inv.hosts) h.group = 'lb';
  return inv.hosts;
}

const ok = (stdout = ''): ExecResult => ({ code: 0, stdout, stderr: '' });

test('rankOf: the number the script prints; 0 when it fails or prints no number; Infinity without a connection', async () => {
  assert.equal(
    await rankOf(
      scripted(() => ({ stdout: '1\n' })),
      'rank',
    ),
    1,
  );
  assert.equal(
    await rankOf(
      scripted(() => ({ code: 1, stdout: '1\n' })),
      'rank',
    ),
    0,
  );
  assert.equal(
    await rankOf(
      scripted(() => ({ stdout: 'master\n' })),
      'rank',
    ),
    0,
  );
  assert.equal(
    await rankOf(
      scripted(() => new Error('connection lost')),
      'rank',
    ),
    0,
  );
  assert.equal(await rankOf(undefined, 'rank'), Infinity);
});

test('the lower rank takes its turn first even when it arrives last; never two turns at once', async () => {
  const [lb01, lb02] = twoLbs();
  const t = new Map<string, Transport>([
    ['lb01', scripted(() => ({ stdout: '1' }))],
    ['lb02', scripted(() => ({ stdout: '0' }))],
  ]);
  const progress = new Progress();
  const turns = new SerialTurns({ hosts: [lb01, lb02], progress, transport: (n) => t.get(n) });
  const log: string[] = [];
  const turn = (h: Host) =>
    turns.take(
      h,
      t.get(h.name)!,
      'proxy',
      'handler:reload',
      { group: 'lb', rank: 'rank' },
      async () => {
        log.push(`start ${h.name}`);
        await new Promise((r) => setTimeout(r, 30));
        log.push(`end ${h.name}`);
        return ok();
      },
      (r) => r.code === 0,
    );
  const first = turn(lb01); // the master arrives first...
  await new Promise((r) => setTimeout(r, 50));
  const second = turn(lb02); // ...and waits for the backup
  await Promise.all([first, second]);
  assert.deepEqual(log, ['start lb02', 'end lb02', 'start lb01', 'end lb01']);
  assert.ok(progress.isPast('lb01', 'proxy', 'handler:reload') && progress.isPast('lb02', 'proxy', 'handler:reload'));
});

test('a peer that is past the role does not hold a host of higher rank', async () => {
  const [lb01, lb02] = twoLbs();
  const t = new Map<string, Transport>([
    ['lb01', scripted(() => ({ stdout: '1' }))],
    ['lb02', scripted(() => ({ stdout: '0' }))],
  ]);
  const progress = new Progress();
  progress.roleDone('lb02', 'proxy');
  const turns = new SerialTurns({ hosts: [lb01, lb02], progress, transport: (n) => t.get(n), turnWaitMs: 60_000 });
  const t0 = Date.now();
  const r = await turns.take(
    lb01,
    t.get('lb01')!,
    'proxy',
    'task:switch',
    { group: 'lb', rank: 'rank' },
    async () => ok('done'),
    () => true,
  );
  assert.equal(r.stdout, 'done');
  assert.ok(Date.now() - t0 < 5_000);
});

test('a turn that failed on one host is not taken by the others of its group', async () => {
  const [lb01, lb02] = twoLbs();
  const t = scripted(() => ok());
  const turns = new SerialTurns({ hosts: [lb01, lb02], progress: new Progress(), transport: () => t });
  let ran = 0;
  const fail = async (): Promise<ExecResult> => (ran++, { code: 1, stdout: '', stderr: 'bad config' });
  const serial = { group: 'lb' as const };
  const a = await turns.take(lb01, t, 'proxy', 'handler:reload', serial, fail, (r) => r.code === 0);
  const b = await turns.take(lb02, t, 'proxy', 'handler:reload', serial, fail, (r) => r.code === 0);
  assert.equal(a.stderr, 'bad config');
  assert.equal(b.code, 1);
  assert.equal(b.stderr, 'not run: it failed on lb01, and the lb hosts change one at a time, stopping at the first failure');
  assert.equal(ran, 1);
  // another turn of the same role is not concerned
  const c = await turns.take(
    lb02,
    t,
    'proxy',
    'handler:restart',
    serial,
    async () => ok('x'),
    () => true,
  );
  assert.equal(c.stdout, 'x');
});

test('a turn waits until its peers answer peerReady (bounded), unreachable peers excepted', async () => {
  const [lb01, lb02] = twoLbs();
  let asks = 0;
  const peer = scripted(() => ({ code: ++asks < 3 ? 1 : 0 }));
  const turns = new SerialTurns({ hosts: [lb01, lb02], progress: new Progress(), transport: (n) => (n === 'lb02' ? peer : undefined) });
  await turns.take(
    lb01,
    scripted(() => ok()),
    'proxy',
    'handler:reload',
    { group: 'lb', peerReady: 'serves' },
    async () => ok(),
    () => true,
  );
  assert.equal(asks, 3);
  assert.deepEqual(new Set(peer.asked), new Set(['serves']));

  // a peer that never answers: the turn goes on after peerReadyMs
  const never = scripted(() => ({ code: 1 }));
  const bounded = new SerialTurns({
    hosts: [lb01, lb02],
    progress: new Progress(),
    transport: (n) => (n === 'lb02' ? never : undefined),
    peerReadyMs: 300,
  });
  const r = await bounded.take(
    lb01,
    scripted(() => ok()),
    'proxy',
    'handler:reload',
    { group: 'lb', peerReady: 'serves' },
    async () => ok('went'),
    () => true,
  );
  assert.equal(r.stdout, 'went');

  // lb02 waits for nobody: lb01 has no connection in this run
  const alone = new SerialTurns({ hosts: [lb01, lb02], progress: new Progress(), transport: () => undefined });
  assert.equal(
    (
      await alone.take(
        lb02,
        scripted(() => ok()),
        'proxy',
        'h',
        { group: 'lb', peerReady: 'serves' },
        async () => ok('y'),
        () => true,
      )
    ).stdout,
    'y',
  );
});
