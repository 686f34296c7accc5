// Running commands for the lab: captured output, errors that say what failed.
import { spawn, spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';

export interface RunResult {
  code: number;
  stdout: string;
  stderr: string;
  /** The command ran past timeoutMs and was killed (code 124 then). */
  timedOut?: boolean;
}

export interface RunOptions {
  input?: string;
  env?: NodeJS.ProcessEnv;
  cwd?: string;
  /** Kill the command (SIGKILL) after this many milliseconds; the result then has code 124. */
  timeoutMs?: number;
  /** Print the command's output as it comes instead of only capturing it. */
  inherit?: boolean;
  /** Captured and also handed over as it comes (to stream it somewhere). */
  onOutput?(chunk: string): void;
  /**
   * The command in a process group of its own; a timeout ends the whole group (SIGTERM, SIGKILL 10 s
   * later), for tools whose children would outlive them (vagrant and its provider).
   */
  group?: boolean;
}

/** Runs a command and captures its output; never throws for a non-zero exit. */
export function run(cmd: string, args: string[], opts: RunOptions = {}): Promise<RunResult> {
  return new Promise((resolvePromise, reject) => {
    const child = spawn(cmd, args, {
      cwd: opts.cwd,
      env: opts.env ?? process.env,
      detached: opts.group ?? false,
      stdio: [opts.input === undefined ? 'ignore' : 'pipe', opts.inherit ? 'inherit' : 'pipe', opts.inherit ? 'inherit' : 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    let timedOut = false;
    let killTimer: NodeJS.Timeout | undefined;
    const onOut = (d: string) => ((stdout += d), opts.onOutput?.(d));
    const onErr = (d: string) => ((stderr += d), opts.onOutput?.(d));
    child.stdout?.setEncoding('utf8').on('data', onOut);
    child.stderr?.setEncoding('utf8').on('data', onErr);
    const kill = (sig: NodeJS.Signals) => {
      try {
        if (opts.group && child.pid) process.kill(-child.pid, sig);
        else child.kill(sig);
      } catch {}
    };
    const timer = opts.timeoutMs
      ? setTimeout(() => {
          timedOut = true;
          if (opts.group) {
            kill('SIGTERM');
            killTimer = setTimeout(() => kill('SIGKILL'), 10_000);
          } else kill('SIGKILL');
        }, opts.timeoutMs)
      : undefined;
    const done = () => {
      if (timer) clearTimeout(timer);
      if (killTimer) clearTimeout(killTimer);
    };
    child.on('error', (err) => {
      done();
      reject(new Error(`cannot run ${cmd}: ${err.message}`));
    });
    child.on('close', (code, signal) => {
      done();
      resolvePromise({ code: timedOut ? 124 : (code ?? (signal ? 128 : 1)), stdout, stderr, timedOut });
    });
    // A command may exit without reading its input (ssh-keygen does): that is no error.
    child.stdin?.on('error', () => {});
    if (opts.input !== undefined) child.stdin?.end(opts.input);
  });
}

/** Runs a command and throws with its output when it fails. */
export async function runOk(cmd: string, args: string[], opts: RunOptions = {}): Promise<RunResult> {
  const r = await run(cmd, args, opts);
  if (r.code !== 0) {
    const out = (r.stderr || r.stdout).trim().split('\n').slice(-15).join('\n');
    throw new Error(`${cmd} ${args.join(' ')} exited ${r.code}${out ? `:\n${out}` : ''}`);
  }
  return r;
}

/** The start time of a process (field 22 of /proc/PID/stat), to tell it from a later process with the same PID. */
export function processStartTime(pid: number): string | null {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // the command name (field 2) may hold spaces and parentheses: fields after the last ")"
    const rest = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return rest[19] ?? null;
  } catch {
    return null;
  }
}

/** True when the process with this PID is still the one that had this start time. */
export const sameProcessAlive = (pid: number, startTime: string): boolean => processStartTime(pid) === startTime;

export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

export const log = (msg: string): void => console.log(`lab: ${msg}`);

/** True when the command is on the PATH. */
export const commandExists = (cmd: string): boolean => spawnSync('sh', ['-c', `command -v ${cmd}`], { stdio: 'ignore' }).status === 0;
