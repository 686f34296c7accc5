// Secrets never reach output, logs or diffs: every text the engine prints goes through this.
export class Redactor {
  private readonly secrets: string[];
  constructor(secrets: string[]) {
    // Longest first, so that a secret containing another is replaced whole.
    this.secrets = [...new Set(secrets.filter((s) => s.length >= 4))].sort((a, b) => b.length - a.length);
  }
  redact(text: string): string {
    let out = text;
    for (const s of this.secrets) out = out.split(s).join('********');
    return out;
  }
}
