// Errors meant for the user: printed as one clear message, no stack trace.
export class UserError extends Error {
  constructor(
    message: string,
    readonly exitCode = 1,
  ) {
    super(message);
    this.name = 'UserError';
  }
}

/** A command whose issue has not landed yet: says so and exits 2. */
export function notBuiltYet(command: string, what: string): never {
  throw new UserError(`\`${command}\` is not available in this version yet: ${what}`, 2);
}
