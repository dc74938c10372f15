/**
 * Streaming through the vendors' own, unmodified SDKs, as their users would: ElevenLabs
 * (`speechToText.realtime.connect` with `baseUrl`), OpenAI (`OpenAIRealtimeWS` with `intent: 'transcription'`
 * over wss, trusting a test CA through the `ws` options the SDK passes on) and Deepgram (`listen.v1.connect` with
 * `baseUrl`). Each streams 16 kHz PCM in paced chunks, commits/finalises at given audio positions, ends the way its
 * vendor ends a stream, and returns every server event with its arrival time. Used against the scripted dialect
 * server and against the real gateway.
 *
 * A credential starting with `rtt_` is sent where the vendor sends temporary tokens (ElevenLabs `token` query,
 * Deepgram `Bearer`); any other is sent as the API key.
 */
import { Agent } from 'node:https';
import { setTimeout as sleep } from 'node:timers/promises';
import { DeepgramClient } from '@deepgram/sdk';
import { AudioFormat, CommitStrategy, ElevenLabsClient, RealtimeEvents } from '@elevenlabs/elevenlabs-js';
import OpenAI from 'openai';
import { OpenAIRealtimeWS } from 'openai/realtime/ws';

export interface SdkEvent {
  /** Arrival, ms since the first audio chunk was sent (negative: before it). */
  readonly atMs: number;
  /** Seconds of audio sent when it arrived. */
  readonly sentSeconds: number;
  /** The vendor's event name: `message_type` (ElevenLabs), `type` (OpenAI, Deepgram), or `close` / `error`. */
  readonly type: string;
  readonly data: unknown;
}

export interface SdkStreamOptions {
  /** Audio per chunk. @default 100 */
  readonly chunkMs?: number;
  /** 1 = real time, 4 = four times as fast, Infinity = no pacing. @default 1 */
  readonly speed?: number;
  /** Audio positions (seconds) after which to commit (ElevenLabs), `input_audio_buffer.commit` (OpenAI) or `Finalize` (Deepgram). */
  readonly commitAtSeconds?: readonly number[];
  /** `manual`: ElevenLabs commit_strategy=manual, OpenAI turn_detection null, Deepgram endpointing=false. @default 'vad' */
  readonly commitStrategy?: 'vad' | 'manual';
  readonly language?: string;
  /** Interim results (Deepgram `interim_results`). @default true */
  readonly partials?: boolean;
  /** How long to wait for the answers after the audio ends. @default 10000 */
  readonly endTimeoutMs?: number;
  /**
   * ElevenLabs and OpenAI have no end message: after the last commit the client waits for its answer, or gives up
   * once no message came for this long (a commit with nothing left to finalise may get no answer). @default 2000
   */
  readonly settleMs?: number;
  /**
   * Says whether the server has processed all the audio sent (e.g. from the engine's processed-audio counter). With it,
   * ElevenLabs and OpenAI keep the connection open after the last commit until it holds and then nothing came for
   * `settleMs`: a loaded engine may still be sending finals of earlier speech after the audio ended, so the first final
   * after the commit is not the last. Without it they stop at the commit's answer.
   */
  readonly serverDone?: () => Promise<boolean>;
  /**
   * CA to trust for wss://: OpenAI (through the `ws` options the SDK passes on) and Deepgram (through an https
   * agent). The ElevenLabs SDK takes no TLS options: over wss it trusts only the system CAs and NODE_EXTRA_CA_CERTS.
   */
  readonly ca?: string | Buffer;
}

export interface SdkStreamResult {
  readonly events: readonly SdkEvent[];
  /** The server refused the connection (its error is in `error`). */
  readonly refused: boolean;
  readonly closeCode?: number;
  readonly error?: string;
  /** When the client sent each commit/Finalize (same clock as `events`), to measure commit → final. */
  readonly commits: readonly { readonly atMs: number; readonly sentSeconds: number }[];
}

const isToken = (credential: string) => credential.startsWith('rtt_');
const httpBase = (url: string) => url.replace(/^ws(s?):\/\//i, 'http$1://').replace(/\/$/, '');
const wsBase = (url: string) => url.replace(/^http(s?):\/\//i, 'ws$1://').replace(/\/$/, '');

/** Arrival bookkeeping shared by the three clients. */
class Recorder {
  readonly events: SdkEvent[] = [];
  readonly commits: { atMs: number; sentSeconds: number }[] = [];
  private t0 = performance.now();
  private lastAt = performance.now();
  sentSeconds = 0;
  private waiters: (() => void)[] = [];

  started(): void {
    this.t0 = performance.now();
  }

  add(type: string, data: unknown): void {
    this.lastAt = performance.now();
    this.events.push({ atMs: Math.round(performance.now() - this.t0), sentSeconds: Math.round(this.sentSeconds * 1000) / 1000, type, data });
    for (const w of this.waiters.splice(0)) w();
  }

  count(type: string): number {
    return this.events.filter((e) => e.type === type).length;
  }

  commitSent(): void {
    this.commits.push({ atMs: Math.round(performance.now() - this.t0), sentSeconds: Math.round(this.sentSeconds * 1000) / 1000 });
  }

  /** Restarts the quiet clock (when the client sent something that deserves an answer). */
  touch(): void {
    this.lastAt = performance.now();
  }

  /** Ms since the last event or touch. */
  quietMs(): number {
    return performance.now() - this.lastAt;
  }

  /** Resolves when `done()` holds (checked on every event and every 100 ms) or after `timeoutMs`; true when it held. */
  async until(done: () => boolean, timeoutMs: number): Promise<boolean> {
    const deadline = performance.now() + timeoutMs;
    while (!done()) {
      const left = deadline - performance.now();
      if (left <= 0) return false;
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, Math.min(left, 100));
        this.waiters.push(() => {
          clearTimeout(timer);
          resolve();
        });
      });
    }
    return true;
  }
}

/** Sends `pcm` in paced chunks; `send` gets each chunk, `commit` runs once the audio sent reaches each position. */
async function pace(rec: Recorder, pcm: Int16Array, rate: number, opts: SdkStreamOptions, send: (chunk: Buffer) => void, commit: () => void, alive: () => boolean): Promise<void> {
  const chunkSamples = Math.max(1, Math.round((rate * (opts.chunkMs ?? 100)) / 1000));
  const speed = opts.speed ?? 1;
  const commits = [...(opts.commitAtSeconds ?? [])].sort((a, b) => a - b);
  rec.started();
  const start = performance.now();
  for (let i = 0; i < pcm.length && alive(); i += chunkSamples) {
    const chunk = pcm.subarray(i, Math.min(pcm.length, i + chunkSamples));
    send(Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength));
    rec.sentSeconds = (i + chunk.length) / rate;
    while (commits.length > 0 && (commits[0] ?? Infinity) <= rec.sentSeconds + 1e-9) {
      commits.shift();
      commit();
      rec.commitSent();
    }
    if (Number.isFinite(speed)) {
      const wait = start + (rec.sentSeconds * 1000) / speed - performance.now();
      if (wait > 0) await sleep(wait);
    }
  }
}

/** Linear-interpolation resampling of 16-bit PCM (OpenAI takes 24 kHz only). */
export function resamplePcm16(pcm: Int16Array, from: number, to: number): Int16Array {
  if (from === to) return pcm;
  const out = new Int16Array(Math.floor((pcm.length * to) / from));
  for (let i = 0; i < out.length; i++) {
    const x = (i * from) / to;
    const j = Math.floor(x);
    const a = pcm[j] ?? 0;
    const b = pcm[j + 1] ?? a;
    out[i] = Math.round(a + (b - a) * (x - j));
  }
  return out;
}

function messageOf(err: unknown): string {
  if (err instanceof Error) return err.message;
  if (typeof err === 'object' && err !== null) return JSON.stringify(err);
  return String(err);
}

/**
 * ElevenLabs: waits for `session_started`, streams, commits at the positions, then (ElevenLabs has no end message)
 * commits what is left, waits for its committed transcript and closes.
 */
export async function streamWithElevenLabs(baseUrl: string, credential: string, pcm16k: Int16Array, opts: SdkStreamOptions = {}): Promise<SdkStreamResult> {
  const rec = new Recorder();
  const client = new ElevenLabsClient({ apiKey: isToken(credential) ? 'unused' : credential, baseUrl: httpBase(baseUrl) });
  const connection = await client.speechToText.realtime.connect({
    modelId: 'scribe_v2_realtime',
    audioFormat: AudioFormat.PCM_16000,
    sampleRate: 16000,
    commitStrategy: opts.commitStrategy === 'manual' ? CommitStrategy.MANUAL : CommitStrategy.VAD,
    includeTimestamps: true,
    ...(opts.language === undefined ? {} : { languageCode: opts.language }),
    ...(isToken(credential) ? { token: credential } : {}),
  });
  let closed = false;
  let error: string | undefined;
  for (const type of [RealtimeEvents.SESSION_STARTED, RealtimeEvents.PARTIAL_TRANSCRIPT, RealtimeEvents.COMMITTED_TRANSCRIPT, RealtimeEvents.COMMITTED_TRANSCRIPT_WITH_TIMESTAMPS]) {
    connection.on(type, (data: unknown) => rec.add(type, data));
  }
  // Server error messages arrive on ERROR with their message_type; transport errors as Error objects.
  connection.on(RealtimeEvents.ERROR, (data: unknown) => {
    const type = typeof data === 'object' && data !== null && 'message_type' in data ? String((data).message_type) : 'error';
    if (type === 'error' && error === undefined) error = messageOf(data);
    rec.add(type, data instanceof Error ? { message: data.message } : data);
  });
  connection.on(RealtimeEvents.CLOSE, () => {
    closed = true;
    rec.add('close', null);
  });
  const timeout = opts.endTimeoutMs ?? 10000;
  await rec.until(() => closed || rec.count('session_started') > 0, timeout);
  if (rec.count('session_started') === 0) {
    connection.close();
    return { events: rec.events, commits: rec.commits, refused: true, ...(error === undefined ? {} : { error }) };
  }
  await pace(rec, pcm16k, 16000, opts, (chunk) => connection.send({ audioBase64: chunk.toString('base64'), sampleRate: 16000 }), () => connection.commit(), () => !closed);
  if (!closed) {
    const before = rec.count('committed_transcript');
    connection.commit();
    rec.commitSent();
    rec.touch();
    const settle = opts.settleMs ?? 2000;
    if (opts.serverDone) await settleWhenDone(rec, opts.serverDone, settle, timeout, () => closed);
    else await rec.until(() => closed || rec.count('committed_transcript') > before || rec.quietMs() > settle, timeout);
    connection.close();
    await rec.until(() => closed, timeout);
  }
  return { events: rec.events, commits: rec.commits, refused: false, ...(error === undefined ? {} : { error }) };
}

/** Waits until closed, or the server is done and nothing came for `settleMs`; at most `timeoutMs`. */
async function settleWhenDone(rec: Recorder, serverDone: () => Promise<boolean>, settleMs: number, timeoutMs: number, closed: () => boolean): Promise<void> {
  const deadline = performance.now() + timeoutMs;
  let done = false;
  while (!closed() && performance.now() < deadline) {
    if (!done) done = await serverDone().catch(() => false);
    if (done && rec.quietMs() > settleMs) return;
    await sleep(100);
  }
}

/**
 * OpenAI: `session.update` (transcription, 24 kHz pcm, server VAD or manual), waits for `session.updated`, streams
 * (resampled to 24 kHz), commits at the positions, commits the rest, waits for its completion and closes.
 */
export async function streamWithOpenAI(baseUrl: string, credential: string, pcm16k: Int16Array, opts: SdkStreamOptions = {}): Promise<SdkStreamResult> {
  const rec = new Recorder();
  const client = new OpenAI({ apiKey: credential, baseURL: `${httpBase(baseUrl)}/v1` });
  const rt = new OpenAIRealtimeWS({ intent: 'transcription', options: opts.ca === undefined ? {} : { ca: opts.ca } }, client);
  let closed = false;
  let closeCode: number | undefined;
  let error: string | undefined;
  let opened = false;
  rt.socket.on('open', () => {
    opened = true;
  });
  /** Bytes appended since the buffer was last committed, by the client or by the server's VAD. */
  let sinceCommit = 0;
  rt.on('event', (event) => {
    if (event.type === 'input_audio_buffer.committed') sinceCommit = 0;
    rec.add(event.type, event);
  });
  rt.on('error', (err) => {
    error ??= err.message;
    if (!err.error) rec.add('error', { message: err.message });
  });
  rt.socket.on('close', (code) => {
    closed = true;
    closeCode = code;
    rec.add('close', { code });
  });
  const timeout = opts.endTimeoutMs ?? 10000;
  await rec.until(() => opened || closed, timeout);
  if (!opened) {
    rt.socket.terminate();
    return { events: rec.events, commits: rec.commits, refused: true, ...(error === undefined ? {} : { error }) };
  }
  rt.send({
    type: 'session.update',
    session: {
      type: 'transcription',
      audio: {
        input: {
          format: { type: 'audio/pcm', rate: 24000 },
          transcription: { model: 'gpt-4o-transcribe', ...(opts.language === undefined ? {} : { language: opts.language }) },
          turn_detection: opts.commitStrategy === 'manual' ? null : { type: 'server_vad', threshold: 0.5, prefix_padding_ms: 300, silence_duration_ms: 500 },
        },
      },
    },
  });
  await rec.until(() => closed || rec.count('session.updated') > 0 || rec.count('error') > 0, timeout);
  const pcm24k = resamplePcm16(pcm16k, 16000, 24000);
  await pace(rec, pcm24k, 24000, opts, (chunk) => {
    sinceCommit += chunk.length;
    rt.send({ type: 'input_audio_buffer.append', audio: chunk.toString('base64') });
  }, () => {
    sinceCommit = 0;
    rt.send({ type: 'input_audio_buffer.commit' });
  }, () => !closed);
  if (!closed) {
    if (sinceCommit > 0) {
      const before = rec.count('conversation.item.input_audio_transcription.completed');
      rt.send({ type: 'input_audio_buffer.commit' });
      rec.commitSent();
      rec.touch();
      const settle = opts.settleMs ?? 2000;
      if (opts.serverDone) await settleWhenDone(rec, opts.serverDone, settle, timeout, () => closed);
      else await rec.until(() => closed || rec.count('conversation.item.input_audio_transcription.completed') > before || rec.quietMs() > settle, timeout);
    }
    rt.close();
    await rec.until(() => closed, timeout);
  }
  return { events: rec.events, commits: rec.commits, refused: false, ...(closeCode === undefined ? {} : { closeCode }), ...(error === undefined ? {} : { error }) };
}

/**
 * Deepgram: linear16 at 16 kHz with interim results, VAD events and utterance ends, Finalize at the positions,
 * CloseStream at the end, then waits for the server's close (Metadata comes before it).
 */
export async function streamWithDeepgram(baseUrl: string, credential: string, pcm16k: Int16Array, opts: SdkStreamOptions = {}): Promise<SdkStreamResult> {
  const rec = new Recorder();
  const client = new DeepgramClient(isToken(credential) ? { accessToken: credential, baseUrl: wsBase(baseUrl) } : { apiKey: credential, baseUrl: wsBase(baseUrl) });
  const connection = await client.listen.v1.connect({
    model: 'nova-3',
    encoding: 'linear16',
    sample_rate: 16000,
    channels: 1,
    interim_results: opts.partials === false ? 'false' : 'true',
    vad_events: 'true',
    utterance_end_ms: 1000,
    endpointing: opts.commitStrategy === 'manual' ? false : 300,
    ...(opts.language === undefined ? {} : { language: opts.language }),
    ...(opts.ca === undefined ? {} : { agent: new Agent({ ca: opts.ca }) }),
  });
  let closed = false;
  let closeCode: number | undefined;
  let error: string | undefined;
  connection.on('message', (message: unknown) => {
    const type = typeof message === 'object' && message !== null && 'type' in message ? String((message).type) : 'binary';
    rec.add(type, message);
  });
  connection.on('close', (event: { code?: number }) => {
    closed = true;
    closeCode = event.code;
    rec.add('close', { code: event.code });
  });
  connection.on('error', (err: Error) => {
    error ??= err.message;
    rec.add('error', { message: err.message });
  });
  connection.connect();
  try {
    await connection.waitForOpen();
  } catch (err) {
    error ??= messageOf(err);
    connection.close();
    return { events: rec.events, commits: rec.commits, refused: true, error };
  }
  await pace(rec, pcm16k, 16000, opts, (chunk) => connection.sendMedia(chunk), () => connection.sendFinalize({ type: 'Finalize' }), () => !closed);
  const timeout = opts.endTimeoutMs ?? 10000;
  if (!closed) {
    connection.sendCloseStream({ type: 'CloseStream' });
    await rec.until(() => closed, timeout);
  }
  // Also after a server close: the SDK reconnects on any close but 1000 unless told it is done.
  connection.close();
  return { events: rec.events, commits: rec.commits, refused: false, ...(closeCode === undefined ? {} : { closeCode }), ...(error === undefined ? {} : { error }) };
}
