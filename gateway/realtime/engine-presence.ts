/**
 * Live streaming engine instances: the members of the consumer group every streaming engine joins
 * (`realtimeEngineGroupId`). Kafka already tracks their liveness (session timeout), so no separate presence record
 * is needed. Read with the admin client, cached briefly so a burst of upgrades costs one request.
 */
import type { Admin } from '../../streams/index.js';

export interface EnginePresence {
  liveEngines(): Promise<number>;
}

export class GroupEnginePresence implements EnginePresence {
  #cached: { at: number; value: number } | undefined;
  #inFlight: Promise<number> | undefined;

  constructor(
    private readonly admin: Admin,
    private readonly groupId: string,
    private readonly ttlMs = 2000,
    private readonly now: () => number = Date.now,
  ) {}

  liveEngines(): Promise<number> {
    const c = this.#cached;
    if (c && this.now() - c.at < this.ttlMs) return Promise.resolve(c.value);
    this.#inFlight ??= this.admin
      .describeGroups([this.groupId])
      .then((d) => {
        const g = d.groups[0];
        const value = g && g.state !== 'Dead' && g.state !== 'Empty' ? g.members.length : 0;
        this.#cached = { at: this.now(), value };
        return value;
      })
      .finally(() => {
        this.#inFlight = undefined;
      });
    return this.#inFlight;
  }
}
