// Shell quoting for the POSIX sh scripts the engine sends to hosts.

/** Quotes one word for sh: 'it'\''s'. */
export function shq(s: string): string {
  if (/^[A-Za-z0-9_@%+=:,./-]+$/.test(s)) return s;
  return `'${s.replace(/'/g, `'\\''`)}'`;
}

/** A random marker that cannot appear in normal output, used to split batched probe output. */
export function marker(): string {
  return `__HASETUP_${Math.random().toString(36).slice(2, 10)}__`;
}
