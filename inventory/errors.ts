// Errors of the inventory and secrets files, each located at a file, line, column and field, and
// the YAML source wrapper that finds those positions.
import { LineCounter, isMap, isScalar, isSeq, parseDocument, visit, type Document, type Node } from 'yaml';

export type PathSegment = string | number;

export interface InventoryIssue {
  file: string; // the file as the caller named it
  line: number; // 1-based; 0 when the issue concerns the file as a whole
  col: number; // 1-based; 0 when line is 0
  path: string; // field, e.g. hosts.lb[1].priority ("" for the whole document)
  message: string;
}

export function formatIssue(i: InventoryIssue): string {
  const where = i.line > 0 ? `${i.file}:${i.line}:${i.col}` : i.file;
  return `${where}: ${i.path ? `${i.path}: ` : ''}${i.message}`;
}

/** Sorts by file, line, column and drops exact duplicates. */
export function sortIssues(issues: InventoryIssue[]): InventoryIssue[] {
  const seen = new Set<string>();
  return [...issues]
    .sort((a, b) => (a.file === b.file ? a.line - b.line || a.col - b.col : a.file < b.file ? -1 : 1))
    .filter((i) => {
      const k = formatIssue(i);
      if (seen.has(k)) return false;
      seen.add(k);
      return true;
    });
}

/** An invalid inventory or secrets file. The message lists every issue, one per line. */
export class InventoryError extends Error {
  readonly errors: InventoryIssue[];
  constructor(errors: InventoryIssue[]) {
    const sorted = sortIssues(errors);
    super(sorted.map(formatIssue).join('\n'));
    this.name = 'InventoryError';
    this.errors = sorted;
  }
}

export function formatPath(path: readonly PathSegment[]): string {
  let out = '';
  for (const seg of path) {
    if (typeof seg === 'number') out += `[${seg}]`;
    else out += out ? `.${seg}` : seg;
  }
  return out;
}

/** A short description of a YAML value for "got ..." in messages. */
export function describeValue(v: unknown): string {
  if (v === null || v === undefined) return 'nothing';
  if (typeof v === 'string') return JSON.stringify(v);
  if (typeof v === 'number' || typeof v === 'boolean') return String(v);
  if (Array.isArray(v)) return 'a list';
  if (v instanceof Date) return `a date (${v.toISOString()})`;
  if (typeof v === 'object') return 'a mapping';
  return typeof v;
}

function keyName(k: unknown): unknown {
  return isScalar(k) ? k.value : k;
}

/** A real inventory is a few kilobytes: a file larger than this is refused before it is parsed. */
export const MAX_YAML_BYTES = 1024 * 1024;
/** Aliases (*name) a file may expand; more is refused (a "billion laughs" file grows without bound). */
export const MAX_ALIASES = 100;

/** A parsed YAML file: its document, its plain JavaScript value, and the positions of its fields. */
export class YamlSource {
  readonly file: string;
  readonly doc: Document.Parsed;
  readonly lines: LineCounter;
  /** The document as plain data (undefined when it could not be parsed). */
  readonly data: unknown;
  /** YAML syntax errors (when not empty, data is undefined). */
  readonly syntaxIssues: InventoryIssue[];

  /** With redact (the secrets file), syntax errors give yaml's error code, not its message (which may quote the text). */
  constructor(file: string, text: string, opts: { redact?: boolean } = {}) {
    this.file = file;
    this.lines = new LineCounter();
    const size = Buffer.byteLength(text);
    if (size > MAX_YAML_BYTES) {
      // not even parsed: a few megabytes of YAML take many seconds
      this.doc = parseDocument('', { lineCounter: this.lines });
      this.syntaxIssues = [
        {
          file,
          line: 1,
          col: 1,
          path: '',
          message: `the file is ${(size / 1048576).toFixed(1)} MB; a cluster's file is a few kilobytes, and files over ${MAX_YAML_BYTES / 1048576} MB are refused`,
        },
      ];
      this.data = undefined;
      return;
    }
    this.doc = parseDocument(text, { lineCounter: this.lines, prettyErrors: false, keepSourceTokens: true, uniqueKeys: true });
    this.syntaxIssues = this.doc.errors.map((e) => {
      const { line, col } = this.lines.linePos(e.pos[0]);
      let message = opts.redact ? `YAML syntax error (${e.code})` : `YAML syntax error: ${e.message.replace(/\s+/g, ' ').trim()}`;
      if (e.code === 'DUPLICATE_KEY') {
        const key = this.keyAt(e.pos[0]);
        if (key !== undefined) message = `key "${key}" is written twice in this mapping (YAML keys must be unique)`;
      }
      return { file, line, col, path: '', message };
    });
    let data: unknown;
    if (!this.syntaxIssues.length) {
      try {
        data = this.doc.toJS({ maxAliasCount: MAX_ALIASES });
      } catch (e) {
        if (!(e instanceof ReferenceError)) throw e;
        // yaml refuses aliases that would expand without bound, or an alias to no anchor
        const at = this.firstAlias();
        this.syntaxIssues.push({
          file,
          line: at.line,
          col: at.col,
          path: '',
          message: /alias count/i.test(e.message)
            ? `aliases expanding into more than ${MAX_ALIASES} copies: refused (a file that grows without bound when read)`
            : `YAML error: ${e.message}`,
        });
      }
    }
    this.data = this.syntaxIssues.length ? undefined : data;
  }

  /** The duplicate key of a DUPLICATE_KEY error at offset `pos` (keys are plain names here). */
  private keyAt(pos: number): string | undefined {
    let found: string | undefined;
    visit(this.doc, {
      Pair: (_k, pair) => {
        const k = pair.key as Node | null;
        if (found === undefined && k && isScalar(k) && k.range && k.range[0] <= pos && pos <= k.range[2]) found = String(k.value);
      },
    });
    return found;
  }

  private firstAlias(): { line: number; col: number } {
    let pos: number | undefined;
    visit(this.doc, {
      Alias: (_k, a) => {
        if (pos === undefined && a.range) pos = a.range[0];
      },
    });
    return pos === undefined ? { line: 1, col: 1 } : this.lines.linePos(pos);
  }

  /** The plain value at path, or undefined. */
  valueAt(path: readonly PathSegment[]): unknown {
    let v: unknown = this.data;
    for (const seg of path) {
      if (v === null || typeof v !== 'object') return undefined;
      v = (v as Record<string | number, unknown>)[seg];
    }
    return v;
  }

  /** True when the field at path is present in the file. */
  has(path: readonly PathSegment[]): boolean {
    const r = this.walk(path);
    return r.depth === path.length;
  }

  private walk(path: readonly PathSegment[]): { node: Node | null; key: Node | null; depth: number } {
    let node: unknown = this.doc.contents;
    let key: Node | null = null;
    let depth = 0;
    for (const seg of path) {
      if (isMap(node)) {
        const pair = node.items.find((p) => String(keyName(p.key)) === String(seg));
        if (!pair) break;
        key = pair.key as Node;
        node = pair.value;
      } else if (isSeq(node) && typeof seg === 'number') {
        const item = node.items[seg];
        if (item === undefined) break;
        key = null;
        node = item;
      } else break;
      depth++;
    }
    return { node: (node as Node | null) ?? null, key, depth };
  }

  private pos(n: Node | null | undefined): { line: number; col: number } | null {
    if (!n || !n.range) return null;
    return this.lines.linePos(n.range[0]);
  }

  /**
   * The position of the field at path: its value when present (or its key when the value is empty),
   * else the key (or, in a list, the item) of the nearest enclosing field that is present. With
   * where = 'key', the key itself.
   */
  at(path: readonly PathSegment[], where: 'value' | 'key' = 'value'): { line: number; col: number } {
    const r = this.walk(path);
    if (r.depth === path.length) {
      const p = where === 'key' ? (this.pos(r.key) ?? this.pos(r.node)) : (this.pos(r.node) ?? this.pos(r.key));
      if (p) return p;
    } else {
      const p = this.pos(r.key) ?? this.pos(r.node);
      if (p) return p;
    }
    return { line: 1, col: 1 };
  }

  issue(path: readonly PathSegment[], message: string, where: 'value' | 'key' = 'value'): InventoryIssue {
    const { line, col } = this.at(path, where);
    return { file: this.file, line, col, path: formatPath(path), message };
  }
}
