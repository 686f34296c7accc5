// keepalived.conf as statements: the tokenizer (quotes, comments, braces), blocks and `include` (with
// shell-style patterns), each statement with its file and line. What the keywords mean: config.ts.
import { readFileSync, readdirSync, statSync } from 'node:fs';
import { dirname, isAbsolute, join, resolve, basename } from 'node:path';
import { splitWords, type WordRules } from '../common/words.ts';
import type { ConfigMessage, Where } from './config-types.ts';

export interface Token extends Where {
  text: string;
  quoted: boolean;
}

export interface Statement extends Where {
  keyword: string;
  args: Token[];
  block?: Statement[];
}

const COMMAND_WORDS: WordRules = { comments: false, controlEscapes: false, space: (c) => /\s/.test(c), strictQuotes: false };

/** keepalived-style command-line splitting: whitespace separates, '...' and "..." group, \ escapes. */
export function splitCommand(s: string): string[] {
  return splitWords(s, COMMAND_WORDS);
}

function tokenizeLine(line: string, file: string, lineNo: number, errors: ConfigMessage[]): Token[] {
  const out: Token[] = [];
  let i = 0;
  while (i < line.length) {
    const c = line[i];
    if (/\s/.test(c)) {
      i++;
      continue;
    }
    if (c === '#' || c === '!') break;
    if (c === '{' || c === '}') {
      out.push({ text: c, quoted: false, file, line: lineNo });
      i++;
      continue;
    }
    if (c === '"') {
      const end = line.indexOf('"', i + 1);
      if (end < 0) {
        errors.push({ file, line: lineNo, message: 'unterminated quoted string' });
        return out;
      }
      out.push({ text: line.slice(i + 1, end), quoted: true, file, line: lineNo });
      i = end + 1;
      continue;
    }
    let j = i;
    while (j < line.length && !/[\s{}]/.test(line[j])) j++;
    out.push({ text: line.slice(i, j), quoted: false, file, line: lineNo });
    i = j;
  }
  return out;
}

function globFiles(pattern: string): string[] {
  if (!/[*?[]/.test(basename(pattern))) return [pattern];
  const dir = dirname(pattern);
  const re = new RegExp(
    '^' +
      basename(pattern)
        .replace(/[.+^${}()|\\]/g, '\\$&')
        .replace(/\*/g, '.*')
        .replace(/\?/g, '.') +
      '$',
  );
  let names: string[];
  try {
    names = readdirSync(dir);
  } catch {
    return [];
  }
  return names
    .filter((n) => re.test(n))
    .sort()
    .map((n) => join(dir, n))
    .filter((p) => statSync(p).isFile());
}

/** Reads a file (following `include`) into statements. */
export function parseStatements(file: string, errors: ConfigMessage[], text?: string, depth = 0): Statement[] {
  let src: string;
  if (text !== undefined) src = text;
  else {
    try {
      src = readFileSync(file, 'utf8');
    } catch (e) {
      errors.push({ file, line: 0, message: `cannot read: ${(e as Error).message}` });
      return [];
    }
  }
  // one line of tokens at a time, so that a statement ends at the end of its line
  const lines = src.split(/\r?\n/).map((l, i) => tokenizeLine(l, file, i + 1, errors));
  let li = 0;
  let ti = 0;
  const peek = (): Token | undefined => {
    while (li < lines.length && ti >= lines[li].length) {
      li++;
      ti = 0;
    }
    return li < lines.length ? lines[li][ti] : undefined;
  };
  const atLineEnd = () => li >= lines.length || ti >= lines[li].length;

  const parseBlock = (opener: Token | null): Statement[] => {
    const out: Statement[] = [];
    for (;;) {
      const t = peek();
      if (!t) {
        if (opener) errors.push({ file: opener.file, line: opener.line, message: "'{' is never closed" });
        return out;
      }
      if (t.text === '}' && !t.quoted) {
        ti++;
        if (!opener) errors.push({ file: t.file, line: t.line, message: "unexpected '}'" });
        else return out;
        continue;
      }
      if (t.text === '{' && !t.quoted) {
        ti++;
        errors.push({ file: t.file, line: t.line, message: "unexpected '{'" });
        parseBlock(t);
        continue;
      }
      ti++;
      const st: Statement = { keyword: t.text, args: [], file: t.file, line: t.line };
      while (!atLineEnd()) {
        const a = lines[li][ti];
        if (!a.quoted && (a.text === '{' || a.text === '}')) break;
        st.args.push(a);
        ti++;
      }
      const next = atLineEnd() ? peek() : lines[li][ti];
      if (next && next.text === '{' && !next.quoted) {
        ti++;
        st.block = parseBlock(next);
      }
      if (st.keyword === 'include' && !t.quoted) {
        if (depth > 8) {
          errors.push({ file: st.file, line: st.line, message: 'include nested too deeply' });
          continue;
        }
        if (st.args.length !== 1) {
          errors.push({ file: st.file, line: st.line, message: 'include expects one file name or pattern' });
          continue;
        }
        const pat = isAbsolute(st.args[0].text) ? st.args[0].text : resolve(dirname(file), st.args[0].text);
        const matched = globFiles(pat);
        if (matched.length === 0 && !/[*?[]/.test(basename(pat)))
          errors.push({ file: st.file, line: st.line, message: `include: no such file ${pat}` });
        for (const f of matched) out.push(...parseStatements(f, errors, undefined, depth + 1));
        continue;
      }
      out.push(st);
    }
  };
  return parseBlock(null);
}
