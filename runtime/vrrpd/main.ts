// hasetup-vrrpd: a VRRP (RFC 3768 / RFC 5798) daemon configured with keepalived.conf.
//   hasetup-vrrpd [-f keepalived.conf] [--status FILE]   run in the foreground
//   hasetup-vrrpd -t [-f keepalived.conf]                check the configuration, exit 0 or 1
import { parseConfig, ConfigError } from './config.ts';
import { Daemon, DEFAULT_STATUS_FILE } from './daemon.ts';
import { parseTcpTarget, runSelfCheck, type SelfCheck } from './check.ts';
import { VERSION } from '../common/version.ts';
import { coalesced } from '../common/coalesce.ts';

const DEFAULT_CONFIG = '/etc/keepalived/keepalived.conf';

const USAGE = `usage: hasetup-vrrpd [-f FILE] [--status FILE] [-t]
       hasetup-vrrpd --check-http URL | --check-tcp HOST:PORT [--timeout SECONDS]
  -f, --use-file FILE   keepalived.conf to use (default ${DEFAULT_CONFIG})
  -t, --config-test     check the configuration and exit: 0 valid, 1 errors (file:line: message)
  -s, --status FILE     where to write the JSON status (default ${DEFAULT_STATUS_FILE}; "-" for none)
  -h, --help            this help
  -v, --version         print the version
  --check-http URL      health check for vrrp_script: exit 0 on an HTTP status below 400, else 1
  --check-tcp HOST:PORT health check for vrrp_script: exit 0 when a TCP connection opens, else 1
  --timeout SECONDS     for the checks (default 3)
Signals: SIGHUP reloads the configuration, SIGTERM/SIGINT leave (a master sends priority 0).`;

interface Args {
  file: string;
  test: boolean;
  status: string | null;
  check?: SelfCheck;
  timeout: number;
}

function parseArgs(argv: string[]): Args {
  const a: Args = { file: DEFAULT_CONFIG, test: false, status: DEFAULT_STATUS_FILE, timeout: 3 };
  for (let i = 0; i < argv.length; i++) {
    let opt = argv[i];
    let val: string | undefined;
    const eq = opt.indexOf('=');
    if (opt.startsWith('--') && eq > 0) {
      val = opt.slice(eq + 1);
      opt = opt.slice(0, eq);
    }
    const next = () => {
      const v = val ?? argv[++i];
      if (v === undefined) fail(`${opt} needs a value`);
      return v;
    };
    switch (opt) {
      case '-f':
      case '--use-file':
        a.file = next();
        break;
      case '-t':
      case '--config-test':
        a.test = true;
        break;
      case '-s':
      case '--status': {
        const v = next();
        a.status = v === '-' ? null : v;
        break;
      }
      case '--check-http': {
        const url = next();
        if (!/^https?:\/\//.test(url)) fail(`--check-http needs an http:// or https:// URL, not ${url}`);
        a.check = { kind: 'http', url };
        break;
      }
      case '--check-tcp': {
        const t = parseTcpTarget(next());
        if (!t) fail('--check-tcp needs HOST:PORT');
        a.check = { kind: 'tcp', ...t };
        break;
      }
      case '--timeout': {
        const v = Number(next());
        if (!(v > 0)) fail('--timeout needs a positive number of seconds');
        a.timeout = v;
        break;
      }
      case '-h':
      case '--help':
        console.log(USAGE);
        process.exit(0);
        break;
      case '-v':
      case '--version':
        console.log(`hasetup-vrrpd ${VERSION}`);
        process.exit(0);
        break;
      default:
        fail(`unknown option ${opt}`);
    }
  }
  return a;
}

function fail(msg: string): never {
  console.error(`hasetup-vrrpd: ${msg}\n${USAGE}`);
  process.exit(2);
}

function configTest(file: string): number {
  try {
    const cfg = parseConfig(file);
    for (const w of cfg.warnings) console.error(`${w.file}:${w.line}: warning: ${w.message}`);
    // as keepalived -t: a keyword it does not know in that place fails the test (the daemon ignores it)
    for (const u of cfg.unknowns) console.error(`${u.file}:${u.line}: ${u.message}`);
    if (cfg.unknowns.length) {
      console.error(
        `${file}: ${cfg.unknowns.length} unknown keyword${cfg.unknowns.length > 1 ? 's' : ''}: keepalived -t fails on ${cfg.unknowns.length > 1 ? 'them' : 'it'} too`,
      );
      return 1;
    }
    console.log(`${file}: configuration OK (${cfg.instances.length} vrrp_instance, ${Object.keys(cfg.scripts).length} vrrp_script)`);
    return 0;
  } catch (e) {
    if (e instanceof ConfigError) {
      for (const m of e.errors) console.error(`${m.file}:${m.line}: ${m.message}`);
      return 1;
    }
    console.error(`${file}: ${(e as Error).message}`);
    return 1;
  }
}

async function main(): Promise<void> {
  const args = parseArgs(process.argv.slice(2));
  if (args.check) process.exit((await runSelfCheck(args.check, args.timeout * 1000)) ? 0 : 1);
  if (args.test) process.exit(configTest(args.file));
  const stamp = () => new Date().toISOString();
  const daemon = new Daemon({
    configFile: args.file,
    statusFile: args.status,
    log: (line) => console.log(`${stamp()} ${line}`),
  });
  let stopping = false;
  const leave = (sig: string) => {
    if (stopping) return;
    stopping = true;
    console.log(`${stamp()} ${sig}: leaving`);
    const hard = setTimeout(() => process.exit(1), 10_000);
    daemon.stop().then(
      () => {
        clearTimeout(hard);
        process.exit(0);
      },
      (e) => {
        console.error(`${stamp()} stopping: ${(e as Error).message}`);
        process.exit(1);
      },
    );
  };
  process.on('SIGTERM', () => leave('SIGTERM'));
  process.on('SIGINT', () => leave('SIGINT'));
  // a SIGHUP during a reload makes one more reload after it
  const reload = coalesced(() => daemon.reload().catch((e) => console.error(`${stamp()} reload: ${(e as Error).message}`)));
  process.on('SIGHUP', () => {
    console.log(`${stamp()} SIGHUP: reloading ${args.file}`);
    reload();
  });
  try {
    await daemon.start();
  } catch (e) {
    if (e instanceof ConfigError) for (const m of e.errors) console.error(`${m.file}:${m.line}: ${m.message}`);
    else console.error(`hasetup-vrrpd: ${(e as Error).message}`);
    process.exit(1);
  }
}

void main();
