// A timeout that is cheap to move, for the ones every request re-arms.
import { clock } from './reads.ts';

/**
 * A timeout that is cheap to move, for the ones every request re-arms: moving it only stores the new deadline;
 * the timer is re-armed when it fires before the deadline (for the rest) or when the deadline comes sooner.
 */
export class Deadline {
  at = 0; // the deadline (ms since the epoch), 0 when none
  private timer: NodeJS.Timeout | null = null;
  private fireAt = 0;
  constructor(private onExpire: () => void) {}

  set(now: number, ms: number): void {
    if (ms <= 0) {
      this.at = 0;
      return;
    }
    this.at = now + ms;
    if (this.timer && this.fireAt <= this.at) return;
    this.arm(now, ms);
  }

  clear(): void {
    this.at = 0;
  }

  stop(): void {
    this.at = 0;
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
  }

  private arm(now: number, ms: number): void {
    if (this.timer) clearTimeout(this.timer);
    this.fireAt = now + ms;
    this.timer = setTimeout(() => this.fire(), ms);
  }

  private fire(): void {
    this.timer = null;
    if (!this.at) return;
    const now = clock();
    if (now >= this.at) {
      this.at = 0;
      this.onExpire();
    } else this.arm(now, this.at - now);
  }
}
