// Splitting a line into words the way the daemons these programs replace do: quotes group, a backslash escapes
// the next character. haproxy.cfg also knows \r \n \t and '#' comments; keepalived's command lines do not.

export interface WordRules {
  /** '#' ends the line (outside quotes) */
  comments: boolean;
  /** \r, \n and \t stand for CR, LF and tab (otherwise a backslash keeps the next character as it is) */
  controlEscapes: boolean;
  /** what separates words */
  space: (c: string) => boolean;
  /** an unterminated quote is an error (otherwise the word runs to the end of the line) */
  strictQuotes: boolean;
}

export function splitWords(line: string, r: WordRules): string[] {
  const out: string[] = [];
  let cur = '';
  let has = false;
  let q: string | null = null;
  const escaped = (n: string) => (!r.controlEscapes ? n : n === 'r' ? '\r' : n === 'n' ? '\n' : n === 't' ? '\t' : n);
  for (let i = 0; i < line.length; i++) {
    const c = line[i];
    if (q) {
      if (c === q) q = null;
      else if (c === '\\' && q === '"' && i + 1 < line.length) cur += escaped(line[++i]);
      else cur += c;
      continue;
    }
    if (c === '\\' && i + 1 < line.length) {
      cur += escaped(line[++i]);
      has = true;
    } else if (c === '"' || c === "'") {
      q = c;
      has = true;
    } else if (r.comments && c === '#') {
      break;
    } else if (r.space(c)) {
      if (has) out.push(cur);
      cur = '';
      has = false;
    } else {
      cur += c;
      has = true;
    }
  }
  if (q && r.strictQuotes) throw new Error('unterminated quote');
  if (has) out.push(cur);
  return out;
}
