// The test runner's hold on the lab "lab" across the end-to-end files: `hold PID` registers the
// runner (PID) as a user of the lab, so that a file's release() leaves the lab up for the next file
// (each file then converges the running cluster instead of applying a freshly booted one); `release
// PID` removes that registration and takes the lab down when a test helper brought it up and no live
// test process uses it any more. A lab that was up before the run is left as it was.
//
//   node --import tsx test/helpers/lab-share.ts hold|release PID
import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { labConfig } from '../../cli/lab/config.ts';
import { labDownIf } from '../../cli/lab/lab.ts';
import { processStartTime } from '../../cli/lab/proc.ts';
import { liveUsers, usersDir } from './lab.ts';

const [what, pidText] = process.argv.slice(2);
const pid = Number(pidText);
const start = processStartTime(pid);
if (!['hold', 'release'].includes(what) || !Number.isInteger(pid) || start === null) {
  console.error('usage: lab-share.ts hold|release PID (of a running process)');
  process.exit(2);
}
const cfg = labConfig();
const me = join(usersDir(cfg), `${pid}-${start}-runner`);
if (what === 'hold') {
  mkdirSync(usersDir(cfg), { recursive: true });
  writeFileSync(me, '');
} else {
  rmSync(me, { force: true });
  await labDownIf(cfg, (state) => state.helperOwned && liveUsers(cfg).length === 0);
}
