/**
 * A receive loop's side of ReceiveOptions.onBrokerState. The loop says `lost(err)` on every failed attempt and
 * `working()` whenever receiving works; its caller hears of the first failure, of each new cause and of the
 * recovery, once each. Attempts are debug lines only: the sidecar prints the outage, so printing here too would
 * show it twice. A caller that does not listen gets the same few lines in the backend's log instead.
 */
import type { Logger } from '../util/log.js';
import type { ReceiveOptions } from './types.js';

export class BrokerState {
  /**
   * The causes reported since receiving stopped, numbers left out (elapsed ms and ports differ between attempts):
   * two causes that take turns are reported once each, not at every turn. Empty: working.
   */
  private readonly causes = new Set<string>();

  constructor(
    private readonly listener: ReceiveOptions['onBrokerState'],
    private readonly logger: Logger,
  ) {}

  get down(): boolean {
    return this.causes.size > 0;
  }

  lost(err: Error): void {
    this.logger.debug(`receiving failed: ${err.message}`);
    const key = err.message.replace(/\d+/g, '#');
    if (this.causes.has(key)) return;
    this.causes.add(key);
    if (this.listener) this.listener(err);
    else this.logger.warn(err.message);
  }

  working(): void {
    if (this.causes.size === 0) return;
    this.causes.clear();
    if (this.listener) this.listener(undefined);
    else this.logger.info('receiving again');
  }
}
