/**
 * Admission of a real-time session, pure: global capacity (sessions per engine × live engine instances, 0 engines
 * refuses) and the per-key concurrent-session limit. Decided on the upgrade request, before any session exists.
 */
import { CLOSE } from './close-codes.js';

export interface AdmissionInput {
  /** Sessions open on this gateway. */
  readonly activeSessions: number;
  /** Sessions open cluster-wide when known (the sessions.state tail); else this gateway's count is used. */
  readonly clusterActiveSessions?: number;
  readonly liveEngines: number;
  readonly sessionsPerEngine: number;
  /** Sessions the presenting key holds on this gateway. */
  readonly keySessions: number;
  readonly maxSessionsPerKey: number;
}

export type Admission =
  | { readonly admitted: true; readonly capacity: number }
  | { readonly admitted: false; readonly closeCode: number; readonly httpStatus: number; readonly code: string; readonly message: string };

export function admit(a: AdmissionInput): Admission {
  const capacity = a.liveEngines * a.sessionsPerEngine;
  if (a.liveEngines <= 0) {
    return { admitted: false, closeCode: CLOSE.overCapacity, httpStatus: 503, code: 'no_realtime_engine', message: 'no streaming engine is running; try again later' };
  }
  const active = Math.max(a.activeSessions, a.clusterActiveSessions ?? 0);
  if (active >= capacity) {
    return {
      admitted: false, closeCode: CLOSE.overCapacity, httpStatus: 503, code: 'over_capacity',
      message: `all ${capacity} real-time session slots are taken (${a.liveEngines} engine(s) × ${a.sessionsPerEngine}); try again later`,
    };
  }
  if (a.keySessions >= a.maxSessionsPerKey) {
    return {
      admitted: false, closeCode: CLOSE.perKeyLimit, httpStatus: 429, code: 'too_many_sessions',
      message: `this API key already holds ${a.keySessions} real-time sessions (limit ${a.maxSessionsPerKey})`,
    };
  }
  return { admitted: true, capacity };
}
