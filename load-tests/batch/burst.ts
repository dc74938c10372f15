/**
 * A burst: `jobs` short jobs submitted as fast as `concurrency` clients can, against a stack whose gateway refuses
 * beyond DALSTON_MAX_QUEUED_TASKS. A refused client waits the Retry-After it was given and submits again, as a
 * well-behaved client would. Optionally one actor host is SIGKILLed and another added a third of the way in. Then:
 * every accepted job's terminal audit rows in ClickHouse (exactly one each), refusals and whether each carried
 * Retry-After, how the backlog drained, and every process's peak RSS. Used by `npm run bench:burst` and by the
 * 300-job e2e test.
 */
import { readFile } from 'node:fs/promises';
import { basename } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { TERMINAL, type Harness } from '../../harness/pipeline-harness.js';
import { sampleProcesses, type ProcessSample } from '../process-sample.js';
import { percentiles, type Percentiles } from '../stats.js';

export interface BurstOptions {
  readonly jobs: number;
  readonly concurrency: number;
  /** The clip every job transcribes. */
  readonly audio: string;
  /** SIGKILL one actor host and start another once this many jobs are accepted. */
  readonly killActorHostAfter?: number;
  /** Longest a refused client waits before trying again, whatever Retry-After said. @default 60 */
  readonly maxRetryWaitSeconds?: number;
  /** How long to wait for the accepted jobs to end. @default 1 hour */
  readonly drainTimeoutMs?: number;
}

export interface BurstReport {
  readonly jobs: number;
  readonly accepted: number;
  readonly refusals: number;
  readonly refusalsWithoutRetryAfter: number;
  readonly retryAfterSeconds: Percentiles;
  readonly submitSeconds: number;
  readonly drainSeconds: number;
  readonly jobsPerSecond: number;
  readonly outcomes: Readonly<Record<string, number>>;
  readonly stuck: readonly string[];
  readonly duplicateTerminalAudits: readonly string[];
  readonly missingTerminalAudits: readonly string[];
  readonly actorHostKilled: string | undefined;
  readonly actorHostAdded: string | undefined;
  readonly processes: readonly ProcessSample[];
  /** Answers other than 201 and 503. */
  readonly otherFailures: readonly string[];
  /** Jobs the stack created (job.created audit rows): more than accepted means a 201 was lost on the way. */
  readonly createdJobs: number;
  /** Submissions that got no answer at all (the connection failed); the client tried again after a second. */
  readonly networkErrors: number;
}

export async function runBurst(h: Harness, o: BurstOptions): Promise<BurstReport> {
  const bytes = await readFile(o.audio);
  const accepted: string[] = [];
  const retryAfter: number[] = [];
  let refusals = 0;
  let refusalsWithoutRetryAfter = 0;
  const otherFailures: string[] = [];
  let networkErrors = 0;
  let killed: string | undefined;
  let added: string | undefined;
  let killing: Promise<void> | undefined;
  const peak = new Map<string, ProcessSample>();
  const samplePeaks = async (): Promise<void> => {
    for (const s of await sampleProcesses(h.services.map((x) => ({ name: x.spec.name, pid: x.child.pid })))) {
      const before = peak.get(s.name);
      if (!before || s.rssPeakMb >= before.rssPeakMb) peak.set(s.name, s);
    }
  };

  const started = Date.now();
  let next = 0;
  const submitOne = async (): Promise<void> => {
    for (;;) {
      const form = new FormData();
      form.append('file', new Blob([bytes]), basename(o.audio));
      const res = await h.api('/v1/audio/transcriptions', { method: 'POST', body: form }).catch((err: unknown) => err as Error);
      if (res instanceof Error) {
        networkErrors++;
        await sleep(1000);
        continue;
      }
      const body = (await res.json().catch(() => ({}))) as { id?: string };
      if (res.status === 201 && body.id) {
        accepted.push(body.id);
        return;
      }
      if (res.status === 503) {
        refusals++;
        const header = res.headers.get('retry-after');
        const seconds = header === null ? Number.NaN : Number(header);
        if (!Number.isFinite(seconds)) refusalsWithoutRetryAfter++;
        else retryAfter.push(seconds);
        await sleep(Math.min(o.maxRetryWaitSeconds ?? 60, Number.isFinite(seconds) ? seconds : 5) * 1000);
        continue;
      }
      otherFailures.push(`submit: HTTP ${res.status} ${JSON.stringify(body)}`);
      return;
    }
  };
  const clients = Array.from({ length: o.concurrency }, async () => {
    while (next < o.jobs) {
      next++;
      await submitOne();
      if (o.killActorHostAfter !== undefined && killing === undefined && accepted.length >= o.killActorHostAfter) {
        killing = (async () => {
          const victim = h.services.find((s) => s.spec.kind === 'actors' && s.running);
          if (!victim) return;
          await samplePeaks();
          await victim.kill();
          killed = victim.spec.name;
          added = (await h.start({ name: `actors-added-${Date.now()}`, kind: 'actors' })).spec.name;
        })();
      }
    }
  });
  const sampler = setInterval(() => void samplePeaks().catch(() => undefined), 2000);
  try {
    await Promise.all(clients);
    await killing;
    const submitSeconds = (Date.now() - started) / 1000;

    // Wait for every accepted job to end, reading statuses in small pages of the job API.
    const outcomes: Record<string, number> = {};
    let pending = [...accepted];
    const deadline = Date.now() + (o.drainTimeoutMs ?? 3600_000);
    while (pending.length > 0 && Date.now() < deadline) {
      const still: string[] = [];
      for (const id of pending) {
        const res = await h.api(`/v1/audio/transcriptions/${id}`);
        const job = res.status === 200 ? ((await res.json()) as { status: string }) : undefined;
        if (res.status !== 200) await res.body?.cancel();
        if (job && TERMINAL.has(job.status)) outcomes[job.status] = (outcomes[job.status] ?? 0) + 1;
        else still.push(id);
      }
      pending = still;
      if (pending.length > 0) await sleep(1000);
    }
    const drainSeconds = (Date.now() - started) / 1000;
    await samplePeaks();

    // Exactly once, from ClickHouse's audit rows (the sink writes them in batches: wait until they are in).
    // Every job of this stack's database is the burst's (no id list: 5,000 ids would make a long query).
    const acceptedSet = new Set(accepted);
    const terminalRows = async () => (await h.clickhouse.client.query<{ job_id: string; n: number }>(
      `SELECT job_id, count() AS n FROM ${h.database}.audit_events WHERE event_type IN ('job.completed','job.failed','job.cancelled') GROUP BY job_id`,
    )).filter((r) => acceptedSet.has(r.job_id));
    let rows = await terminalRows();
    for (let i = 0; i < 60 && rows.length < accepted.length - pending.length; i++) {
      await sleep(1000);
      rows = await terminalRows();
    }
    const byJob = new Map(rows.map((r) => [r.job_id, Number(r.n)]));
    const created = await h.clickhouse.client.query<{ n: number }>(`SELECT uniqExact(job_id) AS n FROM ${h.database}.audit_events WHERE event_type = 'job.created'`);
    return {
      jobs: o.jobs, accepted: accepted.length, refusals, refusalsWithoutRetryAfter, retryAfterSeconds: percentiles(retryAfter),
      submitSeconds, drainSeconds, jobsPerSecond: (accepted.length - pending.length) / drainSeconds, outcomes, stuck: pending,
      duplicateTerminalAudits: [...byJob].filter(([, n]) => n > 1).map(([id]) => id),
      missingTerminalAudits: accepted.filter((id) => !byJob.has(id)),
      actorHostKilled: killed, actorHostAdded: added, processes: [...peak.values()], otherFailures, networkErrors, createdJobs: Number(created[0]?.n ?? 0),
    };
  } finally {
    clearInterval(sampler);
  }
}
