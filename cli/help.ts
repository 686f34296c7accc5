// Help texts that wrap by themselves: prose is written as long lines and wrapped here to the
// terminal's width (80 columns when the output is not a terminal); indented lines (examples,
// tables) are kept as they are.

export function helpWidth(): number {
  return process.stdout.columns || Number(process.env.COLUMNS) || 80;
}

/** Wraps the prose of `text` (consecutive lines not starting with a space form a paragraph). */
export function wrapProse(text: string, width = helpWidth()): string {
  const out: string[] = [];
  let para: string[] = [];
  const flush = () => {
    if (!para.length) return;
    let line = '';
    for (const word of para.join(' ').split(/\s+/).filter(Boolean)) {
      if (line && line.length + 1 + word.length > width) {
        out.push(line);
        line = word;
      } else line = line ? `${line} ${word}` : word;
    }
    out.push(line);
    para = [];
  };
  for (const l of text.split('\n')) {
    if (l.trim() === '' || /^\s/.test(l)) {
      flush();
      out.push(l);
    } else para.push(l);
  }
  flush();
  return out.join('\n');
}

/** For commander's addHelpText: the text, wrapped when help is shown. */
export const prose = (text: string) => (): string => wrapProse(text);
