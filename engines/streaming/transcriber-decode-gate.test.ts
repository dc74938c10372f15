/**
 * The transcriber behind a decode gate (the streaming engine's scheduler), with a scripted VAD, recogniser and gate
 * on a ManualClock: dropped partials count as skipped, finals always go through, the gate's queueing delay stretches
 * the cadence, and the decode cost the cadence learns excludes the wait.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ManualClock } from '../../core/clock.js';
import { IllegalStateError } from '../../core/errors.js';
import type { RecognitionRequest, RecognitionResult, Recognizer } from '../asr/index.js';
import { createStreamingTranscriber, type DecodeGate, type DecodeMeasurement, type DecodeRequest, type GateOutcome, type TranscriptEvent, type VadFrameModel } from './index.js';

const RATE = 16000;

const energyVad: VadFrameModel = {
  createStream: () => ({
    process: async (frame: Float32Array) => {
      let sum = 0;
      for (const s of frame) sum += s * s;
      return Math.sqrt(sum / frame.length) > 0.05 ? 0.95 : 0.02;
    },
  }),
};

/** One word per 250 ms of loud audio; costs nothing on the clock. */
const recognizer: Recognizer = {
  modelId: 'scripted',
  loaded: true,
  load: async () => undefined,
  close: async () => undefined,
  recognize: async (request: RecognitionRequest): Promise<RecognitionResult> => {
    let loud = 0;
    for (const s of request.audio) if (Math.abs(s) > 0.05) loud++;
    const n = Math.floor(loud / (RATE / 4));
    const words = Array.from({ length: n }, (_, i) => ({ text: `w${i}`, start: i * 0.25, end: i * 0.25 + 0.2 }));
    const text = words.map((w) => w.text).join(' ');
    return { language: 'en', text, segments: n === 0 ? [] : [{ start: 0, end: n * 0.25, text, words }] };
  },
};

/** 0.5 s of silence, 6 s of a loud square wave, 1 s of silence. */
function speech(): Float32Array {
  const out = new Float32Array(Math.round(7.5 * RATE));
  for (let i = Math.round(0.5 * RATE); i < Math.round(6.5 * RATE); i++) out[i] = Math.floor((i / RATE) * 400) % 2 === 0 ? 0.3 : -0.3;
  return out;
}

/** A gate that records what it was asked, waits `waitMs` on the clock, and drops partials when told to. */
class ScriptedGate implements DecodeGate {
  readonly requests: DecodeRequest[] = [];
  constructor(private readonly clock: ManualClock, private readonly o: { dropPartials?: boolean; dropFinals?: boolean; waitMs?: number; delayMs?: number } = {}) {}
  async run<T>(request: DecodeRequest, work: () => Promise<T>): Promise<GateOutcome<T>> {
    this.requests.push(request);
    const queuedMs = this.o.waitMs ?? 0;
    this.clock.advance(queuedMs);
    if ((request.kind === 'partial' && this.o.dropPartials === true) || (request.kind === 'final' && this.o.dropFinals === true)) return { ran: false, queuedMs };
    return { ran: true, value: await work(), queuedMs };
  }
  queueDelayMs(): number {
    return this.o.delayMs ?? 0;
  }
}

async function feed(gate: DecodeGate | undefined, clock: ManualClock, onDecode?: (m: DecodeMeasurement) => void) {
  const t = createStreamingTranscriber({ recognizer, vad: energyVad, clock, ...(gate !== undefined && { decodeGate: gate }), ...(onDecode !== undefined && { onDecode }) });
  const events: TranscriptEvent[] = [];
  const audio = speech();
  for (let i = 0; i < audio.length; i += RATE / 10) events.push(...(await t.push(audio.subarray(i, i + RATE / 10))));
  events.push(...(await t.end()));
  return { t, events };
}

test('partials the gate drops count as skipped and are not sent; the final still comes through the gate', async () => {
  const clock = new ManualClock();
  const gate = new ScriptedGate(clock, { dropPartials: true });
  const { t, events } = await feed(gate, clock);
  const partialRequests = gate.requests.filter((r) => r.kind === 'partial').length;
  assert.ok(partialRequests >= 15, `${partialRequests} partials asked for`);
  assert.equal(events.filter((e) => e.type === 'partial').length, 0);
  assert.equal(t.stats.partialDecodes, 0);
  assert.equal(t.stats.partialsSkipped, partialRequests);
  assert.deepEqual(events.filter((e) => e.type === 'final').map((e) => e.type === 'final' && e.utterance), [0]);
  assert.equal(gate.requests.filter((r) => r.kind === 'final').length, 1);
});

test('only the utterance\'s first partial is marked first, until one is shown', async () => {
  const clock = new ManualClock();
  const gate = new ScriptedGate(clock);
  await feed(gate, clock);
  const partials = gate.requests.filter((r) => r.kind === 'partial');
  assert.equal(partials[0]?.firstOfUtterance, true);
  assert.ok(partials.slice(1).every((r) => r.firstOfUtterance === false), 'later partials are not');
});

test('the gate\'s queueing delay stretches the partial cadence', async () => {
  const idleClock = new ManualClock();
  const idle = await feed(new ScriptedGate(idleClock), idleClock);
  const busyClock = new ManualClock();
  const busy = await feed(new ScriptedGate(busyClock, { delayMs: 400 }), busyClock);
  // 400 ms of expected wait at a 0.5 share of real time: a partial every 800 ms of audio instead of 300.
  assert.equal(busy.t.stats.partialIntervalMs, 800);
  assert.ok(busy.t.stats.partialDecodes * 2 <= idle.t.stats.partialDecodes, `busy ${busy.t.stats.partialDecodes}, idle ${idle.t.stats.partialDecodes}`);
  assert.equal(busy.events.filter((e) => e.type === 'final').length, 1);
});

test('the wait for the gate is reported apart and not learnt as decode cost', async () => {
  const clock = new ManualClock();
  const measured: DecodeMeasurement[] = [];
  const { t } = await feed(new ScriptedGate(clock, { waitMs: 300 }), clock, (m) => measured.push(m));
  assert.ok(measured.length > 0);
  assert.ok(measured.every((m) => m.queuedMs === 300 && m.decodeMs === 0));
  assert.equal(t.stats.decodeCostRatio, 0);
});

test('a gate that drops a final is a programming error: the transcriber fails', async () => {
  const clock = new ManualClock();
  await assert.rejects(feed(new ScriptedGate(clock, { dropFinals: true }), clock), IllegalStateError);
});
