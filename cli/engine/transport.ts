// Transports: how the engine runs shell commands on a host. One SSH connection per host, reused for
// every task and file transfer (file contents travel on the command's stdin), or a local shell for
// tests. Commands are POSIX sh; sudo wraps them when the SSH user is not root.
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdir, readFile, appendFile } from 'node:fs/promises';
import { dirname } from 'node:path';
import { Readable } from 'node:stream';
import { NodeSSH } from 'node-ssh';
import { shq } from './shell.ts';

export interface ExecResult {
  /** The exit status; 255 when there was none (see `lost`). */
  code: number;
  stdout: string;
  stderr: string;
  /**
   * No exit status came back: the command was killed by a signal, or its SSH channel closed first (a
   * slow or overloaded host). What it did on the host is unknown: the caller probes again.
   */
  lost?: { signal: string | null };
}

export interface ExecOptions {
  /** Output as it comes (a watcher that prints a line per event); stdout is still returned at the end. */
  onStdout?(chunk: string): void;
}

export interface Transport {
  /** Human name of the target, e.g. "root@10.213.0.11:22". */
  readonly target: string;
  /** Runs a POSIX sh script (as root: through sudo when needed); stdin optional. */
  exec(script: string, stdin?: string | Buffer, opts?: ExecOptions): Promise<ExecResult>;
  /** Number of round trips made so far (for the benchmark and tests). */
  readonly roundTrips: number;
  close(): Promise<void>;
}

/** Raised when a host cannot be reached or authenticated: one clear line. */
export class UnreachableError extends Error {
  constructor(
    readonly host: string,
    message: string,
  ) {
    super(message);
    this.name = 'UnreachableError';
  }
}

function wrap(script: string, sudo: boolean): string {
  // Every script runs under `sh -c` so that it behaves the same whatever the login shell is.
  const inner = `sh -c ${shq(script)}`;
  return sudo ? `sudo -n -H ${inner}` : inner;
}

/** A script that only reads the host (facts, probes): run once more when its exit status was lost. */
export async function execRead(t: Transport, script: string): Promise<ExecResult> {
  const r = await t.exec(script);
  return r.lost ? t.exec(script) : r;
}

/** Runs scripts on this machine (tests, and `--connection local`). */
export class LocalTransport implements Transport {
  roundTrips = 0;
  readonly target = 'local';
  constructor(private readonly env: NodeJS.ProcessEnv = process.env) {}
  exec(script: string, stdin?: string | Buffer, opts: ExecOptions = {}): Promise<ExecResult> {
    this.roundTrips++;
    return new Promise((resolve, reject) => {
      const child = spawn('sh', ['-c', script], { env: this.env, stdio: ['pipe', 'pipe', 'pipe'] });
      const out: Buffer[] = [];
      const err: Buffer[] = [];
      child.stdout.on('data', (b: Buffer) => {
        out.push(b);
        opts.onStdout?.(b.toString('utf8'));
      });
      child.stderr.on('data', (b: Buffer) => err.push(b));
      child.on('error', reject);
      child.on('close', (code, signal) =>
        resolve({
          code: code ?? 255,
          stdout: Buffer.concat(out).toString('utf8'),
          stderr: Buffer.concat(err).toString('utf8'),
          ...(code === null ? { lost: { signal } } : {}),
        }),
      );
      child.stdin.on('error', () => {});
      child.stdin.end(stdin ?? '');
    });
  }
  async close(): Promise<void> {}
}

export interface SshOptions {
  name: string; // inventory host name, for messages
  host: string;
  port: number;
  user: string;
  privateKey?: string; // path
  become: boolean;
  connectTimeout: number; // seconds
  knownHosts: string; // path of hasetup's known_hosts file
}

/** The key type and base64 blob of an SSH public key in wire format. */
function keyLine(key: Buffer): { type: string; blob: string } {
  const len = key.readUInt32BE(0);
  return { type: key.subarray(4, 4 + len).toString('latin1'), blob: key.toString('base64') };
}

function knownHostsName(host: string, port: number): string {
  return port === 22 ? host : `[${host}]:${port}`;
}

/**
 * Trust on first use: an unknown host's key is recorded; a known host presenting another key is
 * a hard error (possible man in the middle, or a rebuilt host: remove its line to accept it).
 */
export async function checkHostKey(
  file: string,
  host: string,
  port: number,
  key: Buffer,
): Promise<{ ok: true; recorded: boolean } | { ok: false; reason: string }> {
  const name = knownHostsName(host, port);
  const { type, blob } = keyLine(key);
  let text = '';
  try {
    text = await readFile(file, 'utf8');
  } catch {
    // no file yet
  }
  const lines = text
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l && !l.startsWith('#'));
  const mine = lines.map((l) => l.split(/\s+/)).filter((f) => f[0].split(',').includes(name));
  if (mine.some((f) => f[1] === type && f[2] === blob)) return { ok: true, recorded: false };
  if (mine.length > 0) {
    const fp = createHash('sha256').update(key).digest('base64').replace(/=+$/, '');
    return {
      ok: false,
      reason: `host key for ${name} has changed (now ${type} SHA256:${fp}); if the host was rebuilt, remove its line from ${file}`,
    };
  }
  await mkdir(dirname(file), { recursive: true });
  await appendFile(file, `${name} ${type} ${blob}\n`, { mode: 0o600 });
  return { ok: true, recorded: true };
}

export class SshTransport implements Transport {
  roundTrips = 0;
  readonly target: string;
  private readonly ssh = new NodeSSH();
  /** Why the connection broke (a host rebooting, sshd gone): later commands fail with it instead of the process. */
  private broken: Error | null = null;
  private constructor(private readonly opts: SshOptions) {
    this.target = `${opts.user}@${opts.host}:${opts.port}`;
  }

  static async connect(opts: SshOptions): Promise<SshTransport> {
    const t = new SshTransport(opts);
    let keyProblem: string | undefined;
    let privateKey: string | undefined;
    if (opts.privateKey) {
      try {
        privateKey = await readFile(opts.privateKey, 'utf8');
      } catch (e) {
        throw new UnreachableError(opts.name, `cannot read SSH private key ${opts.privateKey}: ${(e as Error).message}`);
      }
    }
    // Host keys are checked asynchronously: ssh2 accepts a callback-style verifier.
    const verifier = (key: Buffer, verify: (ok: boolean) => void) => {
      checkHostKey(opts.knownHosts, opts.host, opts.port, key).then(
        (r) => {
          if (!r.ok) keyProblem = r.reason;
          verify(r.ok);
        },
        (e: Error) => {
          keyProblem = `cannot record host key in ${opts.knownHosts}: ${e.message}`;
          verify(false);
        },
      );
    };
    try {
      await t.ssh.connect({
        host: opts.host,
        port: opts.port,
        username: opts.user,
        privateKey,
        agent: privateKey ? undefined : process.env.SSH_AUTH_SOCK,
        readyTimeout: opts.connectTimeout * 1000,
        keepaliveInterval: 10000,
        hostVerifier: verifier as unknown as (key: Buffer) => boolean,
      });
    } catch (e) {
      const err = e as Error & { code?: string; level?: string };
      let why = keyProblem ?? err.message;
      if (!keyProblem) {
        if (err.code === 'ECONNREFUSED') why = 'connection refused';
        else if (err.code === 'EHOSTUNREACH' || err.code === 'ENETUNREACH') why = 'no route to host';
        else if (/Timed out/i.test(err.message)) why = `no answer within ${opts.connectTimeout}s`;
        else if (err.level === 'client-authentication') why = `authentication as ${opts.user} failed (check ssh.user and ssh.private_key)`;
      }
      throw new UnreachableError(opts.name, `${opts.name} (${t.target}): unreachable: ${why}`);
    }
    // node-ssh keeps no 'error' listener once connected: an ECONNRESET would end the whole process
    t.ssh.connection?.on('error', (e: Error) => (t.broken = e));
    t.ssh.connection?.on('close', () => (t.broken ??= new Error('the connection closed')));
    return t;
  }

  async exec(script: string, stdin?: string | Buffer, opts: ExecOptions = {}): Promise<ExecResult> {
    this.roundTrips++;
    if (this.broken)
      throw new UnreachableError(this.opts.name, `${this.opts.name} (${this.target}): connection lost: ${this.broken.message}`);
    const sudo = this.opts.become && this.opts.user !== 'root';
    const r = await this.ssh.execCommand(wrap(script, sudo), {
      stdin: stdin === undefined ? undefined : typeof stdin === 'string' ? stdin : Readable.from([stdin]),
      noTrim: true,
      onStdout: opts.onStdout ? (b: Buffer) => opts.onStdout?.(b.toString('utf8')) : undefined,
    });
    return {
      code: r.code ?? 255,
      stdout: r.stdout,
      stderr: r.stderr,
      ...(r.code === null ? { lost: { signal: r.signal ?? null } } : {}),
    };
  }

  async close(): Promise<void> {
    this.ssh.dispose();
  }
}
