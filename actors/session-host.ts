/**
 * The session host: one real-time session actor per live session on the realtime.events partitions Kafka assigns it,
 * in the actor host process, run by the job actors' runtime (actors/actor-runtime.ts): the same cycle and fencing,
 * over sessions.state. This file is what is particular to sessions: the transition step, and the outbox's effects
 * (the transcript to the artifact store, audit events, the enhance job), each idempotent (fixed keys, fixed event
 * ids, a job id derived from the session id), so a takeover's re-send loses nothing and doubles nothing.
 *
 * Each change is persisted at once, one snapshot per final with no batching: the streaming engine treats a final as
 * durable once it is in sessions.state, and restores a session from there after an engine failover.
 */
import { randomUUID } from 'node:crypto';
import { LOG } from '../core/observability-names.js';
import type { ArtifactStore } from '../storage/index.js';
import {
  ANALYTICS, JOB_EVENTS, REALTIME_EVENTS, SCHEMA_VERSION, SESSION_STATE, checkRealtimeEvent, checkSessionStateMessage,
  decodeMessage, encodeMessage, newMessageHeaders, prefixed,
  type AnalyticsMessage, type RealtimeEvent, type RealtimeSessionState,
} from '../streams/index.js';
import { ActorRuntime, type ActorHostConnections, type ActorHostTuning, type StepContext } from './actor-runtime.js';
import { sessionTranscript } from './session-artifacts.js';
import {
  isTerminalSession, nextSessionWakeAt, sessionTransition, type SessionInput, type SessionSettings,
} from './session-transition.js';
import type { TailCodec } from './state-tail.js';

export interface SessionHostOptions extends ActorHostConnections, ActorHostTuning {
  readonly store: ArtifactStore;
  readonly topicPrefix: string;
  readonly settings: SessionSettings;
}

export const SESSION_TAIL_CODEC: TailCodec<RealtimeSessionState> = {
  label: 'sessions.state',
  decode: (value) => {
    const msg = decodeMessage(checkSessionStateMessage, value);
    return msg.type === 'rt.session.snapshot' ? { kind: 'snapshot', state: msg.state } : { kind: 'claim', claim: msg };
  },
  id: (s) => s.sessionId,
  revision: (s) => s.revision,
  epoch: (s) => s.epoch ?? 0,
  finished: (s) => (s.status === 'active' ? undefined : s.status === 'completed' ? 'completed' : s.status === 'interrupted' ? 'interrupted' : 'failed'),
  finishedAt: (s) => s.endedAt,
  outboxWrittenAt: (s) => ((s.outbox?.length ?? 0) > 0 ? s.persistedAt ?? 0 : undefined),
};

export class SessionHost {
  readonly #o: SessionHostOptions;
  readonly #runtime: ActorRuntime<RealtimeSessionState, RealtimeEvent, SessionInput>;
  readonly instanceId: string;
  /** Sessions this host ended, by status (tests). */
  readonly finishedCount = { completed: 0, interrupted: 0, failed: 0 };

  constructor(options: SessionHostOptions & { readonly instanceId?: string }) {
    this.#o = options;
    this.instanceId = options.instanceId ?? `sessions-${randomUUID().slice(0, 8)}`;
    const groupBase = options.topicPrefix.replace(/\.$/, '');
    this.#runtime = new ActorRuntime<RealtimeSessionState, RealtimeEvent, SessionInput>({
      noun: 'session', nouns: 'sessions', partitionNoun: 'session partition', actorsNoun: 'sessions', logKey: LOG.sessionId,
      eventsTopic: this.#topic(REALTIME_EVENTS.name), stateTopic: this.#topic(SESSION_STATE.name),
      groupId: `${groupBase}-sessions`, tailGroupPrefix: `${groupBase}-sessions`,
      codec: SESSION_TAIL_CODEC,
      decodeEvent: (value) => decodeMessage(checkRealtimeEvent, value),
      eventKey: (ev) => ev.sessionId,
      encodeSnapshot: (state) => encodeMessage({ v: SCHEMA_VERSION, type: 'rt.session.snapshot', state }),
      restore: (state) => state,
      isTerminal: (state) => isTerminalSession(state.status),
      nextWakeAt: (state) => nextSessionWakeAt(state, options.settings),
      timerInput: { type: 'timer' },
      // An ended session ignores late events (a deletion removes its snapshot); an unknown one starts from nothing.
      withoutLive: (input, finished) => (!finished ? 'apply' : input.type === 'rt.session.deleted' && finished.status !== 'removed' ? 'remove' : 'ignore'),
      step: (ctx) => this.#step(ctx),
      sendOutbox: (state) => this.#sendOutbox(state),
    }, { ...options, component: 'session-host', instanceId: this.instanceId, maxWaitTimeMs: 20 });
  }

  #topic(name: string): string {
    return prefixed(this.#o.topicPrefix, name);
  }

  get liveSessions(): number {
    return this.#runtime.liveCount;
  }

  get ownedPartitions(): number[] {
    return this.#runtime.ownedPartitions;
  }

  /** Owned partitions whose sessions are all restored. */
  get restoredPartitions(): number[] {
    return this.#runtime.restoredPartitions;
  }

  /** The session as this host knows it: its live actor, else the latest snapshot read from sessions.state. */
  sessionState(sessionId: string): RealtimeSessionState | undefined {
    return this.#runtime.state(sessionId);
  }

  start(): Promise<void> {
    return this.#runtime.start();
  }

  close(): Promise<void> {
    return this.#runtime.close();
  }

  // ---- the session actor's step ---------------------------------------------------------------------------

  async #step(ctx: StepContext<RealtimeSessionState, SessionInput>): Promise<void> {
    const { input, log } = ctx;
    const result = sessionTransition(ctx.before, input, { now: ctx.now, settings: this.#o.settings, ...(ctx.requestId ? { requestId: ctx.requestId } : {}) });
    for (const effect of result.local) {
      if (effect.type === 'delete_refused') log.warn({}, 'delete of a live session refused');
    }
    if (result.tombstone) {
      await ctx.remove();
      return;
    }
    if (!result.changed || !result.state) {
      ctx.unchanged();
      return;
    }
    const state = await ctx.commit({ ...result.state, outbox: [...result.outbox] });
    for (const effect of result.local) {
      if (effect.type !== 'session_finished') continue;
      this.finishedCount[effect.status === 'active' ? 'failed' : effect.status]++;
      log.info({ status: effect.status, utterances: state.finals.length, audio_seconds: state.audioSeconds, enhance_job_id: state.enhanceJobId }, 'session ended');
    }
    if (input.type === 'rt.session.opened') log.info({ model: state.config.model, dialect: state.config.dialect, partition: ctx.partition }, 'session opened');
    else if (input.type !== 'timer') log.debug({ event: input.type, revision: state.revision, finals: state.finals.length }, 'session event applied');
  }

  /** Sends the outbox of a snapshot: the transcript artifact, the enhance job, analytics (each idempotent). */
  async #sendOutbox(state: RealtimeSessionState): Promise<void> {
    const headers = () => newMessageHeaders({ requestId: state.requestId, tenantId: state.tenantId, clock: this.#o.clock });
    const analytics: AnalyticsMessage[] = [];
    for (const entry of state.outbox ?? []) {
      switch (entry.type) {
        case 'transcript':
          await this.#o.store.put(entry.key, Buffer.from(JSON.stringify(sessionTranscript(state))), 'application/json');
          break;
        case 'job':
          await this.#o.producer.send(this.#topic(JOB_EVENTS.name), { key: entry.event.jobId, value: encodeMessage(entry.event), headers: headers() });
          break;
        case 'analytics':
          analytics.push(entry.message);
          break;
      }
    }
    if (analytics.length > 0) {
      await this.#o.producer.sendBatch([{
        topic: this.#topic(ANALYTICS.name),
        messages: analytics.map((a) => ({ key: state.sessionId, value: encodeMessage(a), headers: headers() })),
      }]);
    }
  }

}
