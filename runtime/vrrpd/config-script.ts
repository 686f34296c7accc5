// vrrp_script: a tracking command, how often it runs, and what its result does to the priority.
import type { VrrpScriptConfig } from './config-types.ts';
import type { Statement } from './config-tokens.ts';
import { flag, numberKeywords, runKeywords, type Ctx, type Handler, type KeywordTable, type NumberKeywords } from './config-keywords.ts';

const SCRIPT_NUMBERS: NumberKeywords<VrrpScriptConfig> = {
  interval: ['interval', 0.01, 86400, false],
  rise: ['rise', 1, 1000],
  fall: ['fall', 1, 1000],
};

/** The script being read, and whether its timeout was given (else it is the interval). */
interface ScriptBuild {
  s: VrrpScriptConfig;
  timeoutSet: boolean;
}

const SCRIPT_KEYWORDS: KeywordTable<ScriptBuild> = new Map<string, Handler<ScriptBuild>>([
  [
    'script',
    (c, k, b) => {
      const argv = c.command(k);
      if (argv) b.s.argv = argv;
    },
  ],
  [
    'timeout',
    (c, k, b) => {
      const v = c.num(k, 0.01, 86400, false);
      if (v !== undefined) {
        b.s.timeout = v;
        b.timeoutSet = true;
      }
    },
  ],
  [
    'weight',
    (c, k, b) => {
      if (k.args.length === 2 && k.args[1].text === 'reverse') c.err(k, 'weight ... reverse is not supported');
      const v = c.num(k, -253, 253);
      if (v !== undefined) b.s.weight = v;
    },
  ],
  ['init_fail', flag((b) => (b.s.initFail = true))],
  ...numberKeywords(SCRIPT_NUMBERS, (b: ScriptBuild) => b.s),
]);

export function parseScript(c: Ctx, st: Statement): VrrpScriptConfig | undefined {
  if (st.args.length !== 1) {
    c.err(st, 'vrrp_script expects a name');
    return undefined;
  }
  const b: ScriptBuild = {
    s: {
      name: st.args[0].text,
      argv: [],
      interval: 1,
      timeout: 0,
      weight: 0,
      rise: 1,
      fall: 1,
      initFail: false,
      where: { file: st.file, line: st.line },
    },
    timeoutSet: false,
  };
  runKeywords(c, c.block(st), SCRIPT_KEYWORDS, b, 'vrrp_script');
  if (b.s.argv.length === 0) c.err(st, `vrrp_script ${b.s.name} has no script`);
  if (!b.timeoutSet) b.s.timeout = b.s.interval;
  return b.s;
}
