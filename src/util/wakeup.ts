/**
 * How a receive loop waits for "something changed" (a handler finished, a message was announced, stop was asked)
 * without leaving anything behind per wait: one waiter at a time, its timer cleared when it wakes. Racing each wait
 * against a promise that lives as long as the loop would retain one reaction per wait — per message at concurrency 1.
 *
 *   const wake = new Wakeup();
 *   signal.addEventListener('abort', wake.poke);   // once per loop, removed when it ends
 *   ... handler.finally(wake.poke) ...
 *   await wake.wait(1000);
 */
export class Wakeup {
  private pending = false;
  private wake: (() => void) | undefined;

  /** Wakes the waiter, or the next wait() when nobody waits now. Bound, so it can be passed as a listener. */
  readonly poke = (): void => {
    if (this.wake) this.wake();
    else this.pending = true;
  };

  /** Resolves at the next poke (at once when one came since the last wait), or after `ms`. */
  wait(ms: number): Promise<void> {
    if (this.pending) {
      this.pending = false;
      return Promise.resolve();
    }
    return new Promise((resolve) => {
      let timer: NodeJS.Timeout | undefined;
      const done = (): void => {
        clearTimeout(timer);
        this.wake = undefined;
        resolve();
      };
      if (Number.isFinite(ms)) timer = setTimeout(done, Math.max(0, ms));
      this.wake = done;
    });
  }
}
