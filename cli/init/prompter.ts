// How the wizard asks: a small interface over inquirer's prompts, each question with its one-line
// help shown above it. The wizard's logic talks to this interface only, so it can be driven by a
// script in unit tests; the real terminal is inquirer's (and the pseudo-terminal test's).
import { styleText } from 'node:util';
import { confirm, input, select } from '@inquirer/prompts';
import type { Verdict } from './validate.ts';

export interface InputQuestion {
  message: string;
  help: string;
  default?: string;
  validate?: (value: string) => Verdict | Promise<Verdict>;
}

export interface Choice<T> {
  name: string;
  value: T;
  description?: string;
}

export interface SelectQuestion<T> {
  message: string;
  help: string;
  choices: Choice<T>[];
  default?: T;
}

export interface Prompter {
  input(q: InputQuestion): Promise<string>;
  select<T>(q: SelectQuestion<T>): Promise<T>;
  confirm(q: { message: string; help?: string; default: boolean }): Promise<boolean>;
  /** A line of information between questions. */
  note(line: string): void;
}

/** True for the error inquirer raises when the user presses Ctrl-C at a prompt. */
export const isPromptExit = (e: unknown): boolean => e instanceof Error && (e.name === 'ExitPromptError' || e.name === 'AbortPromptError');

export class InquirerPrompter implements Prompter {
  constructor(
    private readonly color: boolean,
    private readonly write: (s: string) => void = (s) => process.stdout.write(s),
  ) {}

  private dim(s: string): string {
    return this.color ? styleText('dim', s) : s;
  }

  private help(text: string | undefined): void {
    if (text) this.write(`${this.dim(`  ${text}`)}\n`);
  }

  async input(q: InputQuestion): Promise<string> {
    this.help(q.help);
    const v = await input({
      message: q.message,
      default: q.default,
      required: q.default === undefined,
      validate: q.validate ? async (x: string) => q.validate!(x.trim()) : undefined,
    });
    return v.trim();
  }

  async select<T>(q: SelectQuestion<T>): Promise<T> {
    this.help(q.help);
    return select<T>({ message: q.message, choices: q.choices, default: q.default, loop: false });
  }

  async confirm(q: { message: string; help?: string; default: boolean }): Promise<boolean> {
    this.help(q.help);
    return confirm({ message: q.message, default: q.default });
  }

  note(line: string): void {
    this.write(`${line}\n`);
  }
}
