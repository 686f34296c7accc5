// A child process for the SIGINT test: runs the fixture role over SSH like `hasetup apply` does,
// including its SIGINT handling (finish the current step, then stop). Arguments come as JSON in
// HASETUP_FIXTURE.
import { run, failedRun } from '../../cli/engine/runner.ts';
import { SshTransport } from '../../cli/engine/transport.ts';
import { PlainReporter } from '../../cli/engine/report.ts';
import { Redactor } from '../../cli/engine/redact.ts';
import { fixtureRole, fixtureInventory } from './fixture-role.ts';

const a = JSON.parse(process.env.HASETUP_FIXTURE ?? '{}') as {
  root: string;
  address: string;
  key: string;
  knownHosts: string;
  slowMs: number;
  stateDir: string;
};
const inv = fixtureInventory([{ name: 'h1', address: a.address }]);
const ac = new AbortController();
process.on('SIGINT', () => {
  console.log('interrupted');
  ac.abort();
});
const r = await run({
  inventory: inv,
  roles: [fixtureRole(a.root, { slowMs: a.slowMs })],
  connect: (h) =>
    SshTransport.connect({
      name: h.name,
      host: h.address,
      port: 22,
      user: 'root',
      privateKey: a.key,
      become: false,
      connectTimeout: 5,
      knownHosts: a.knownHosts,
    }),
  reporter: new PlainReporter(false),
  redactor: new Redactor([]),
  signal: ac.signal,
  stateDir: a.stateDir,
});
process.exitCode = r.interrupted ? 130 : failedRun(r) ? 1 : 0;
