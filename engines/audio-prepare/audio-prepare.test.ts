import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdir, mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { CancelledError, InvalidInputError } from '../../core/errors.js';
import { silentLogger } from '../../core/logger.js';
import { readWav, readWavFormat } from '../audio/index.js';
import type { EngineTaskContext } from '../sdk/engine.js';
import { SPEECH_FORMATS, mediaDuration, stereoFile, synthesizeSpeech } from '../../test/fixtures/speech.js';
import { AudioPrepareEngine, prepareAudio, type PrepareOutput } from './audio-prepare.js';

const run = promisify(execFile);
const SENTENCE = 'the quick brown fox jumps over the lazy dog near the river bank';
const EXPECTED_CODEC = { wav: 'pcm_s16le', mp3: 'mp3', m4a: 'aac', flac: 'flac', ogg: 'vorbis', opus: 'opus', webm: 'opus', mp4: 'aac' } as const;

let dir: string;
let sourceSeconds: number;

before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'dalston-prepare-test-'));
  sourceSeconds = await mediaDuration(await synthesizeSpeech(SENTENCE, { format: 'wav', dir, name: 'source' }));
});
after(async () => {
  await rm(dir, { recursive: true, force: true });
});

async function outDir(name: string): Promise<string> {
  const d = join(dir, `out-${name}`);
  await mkdir(d, { recursive: true });
  return d;
}

function rms(x: Float32Array): number {
  let s = 0;
  for (const v of x) s += v * v;
  return Math.sqrt(s / Math.max(1, x.length));
}

for (const format of SPEECH_FORMATS) {
  void test(`${format}: prepared as 16 kHz mono PCM with the source's duration`, async () => {
    const input = await synthesizeSpeech(SENTENCE, { format, dir, name: `in-${format}` });
    const out = await outDir(format);
    const { output, blobs } = await prepareAudio({ input, outDir: out });
    assert.equal(output.original.codec, EXPECTED_CODEC[format]);
    assert.equal(output.original.channels, 1);
    assert.equal(output.sample_rate, 16000);
    assert.equal(output.channels, 1);
    assert.ok(Math.abs(output.duration_seconds - sourceSeconds) < 0.1, `${format}: ${output.duration_seconds} s vs source ${sourceSeconds} s`);
    assert.deepEqual(output.files.map((f) => f.name), ['audio.wav']);
    const wavPath = blobs['audio.wav'];
    assert.ok(wavPath);
    const fmt = await readWavFormat(wavPath);
    assert.deepEqual([fmt.audioFormat, fmt.sampleRate, fmt.channels, fmt.bitsPerSample], [1, 16000, 1, 16]);
    const wav = await readWav(wavPath);
    assert.ok(rms(wav.samples) > 0.01, 'speech is audible, not silence');
  });
}

void test('per-channel split writes one mono file per channel holding that channel', async () => {
  const speech = await synthesizeSpeech(SENTENCE, { format: 'wav', dir, name: 'left' });
  const silence = join(dir, 'silence.wav');
  await run('ffmpeg', ['-nostdin', '-v', 'error', '-y', '-f', 'lavfi', '-i', 'anullsrc=r=22050:cl=mono', '-t', '1', silence]);
  const stereo = await stereoFile(speech, silence, join(dir, 'stereo.wav'));
  const { output, blobs } = await prepareAudio({ input: stereo, outDir: await outDir('stereo'), perChannel: true });
  assert.equal(output.original.channels, 2);
  assert.deepEqual(output.files.map((f) => [f.name, f.channel]), [['audio.wav', undefined], ['audio_ch0.wav', 0], ['audio_ch1.wav', 1]]);
  const ch0 = await readWav(blobs['audio_ch0.wav'] ?? '');
  const ch1 = await readWav(blobs['audio_ch1.wav'] ?? '');
  assert.equal(ch0.channels, 1);
  assert.ok(rms(ch0.samples) > 0.01, `left channel holds the speech (rms ${rms(ch0.samples)})`);
  assert.ok(rms(ch1.samples) < 0.001, `right channel is silent (rms ${rms(ch1.samples)})`);
  assert.ok(Math.abs(ch0.durationSeconds - output.duration_seconds) < 0.01);
});

async function assertRefused(input: string, pattern: RegExp): Promise<void> {
  await assert.rejects(prepareAudio({ input, outDir: await outDir('bad') }), (err: unknown) => {
    assert.ok(err instanceof InvalidInputError, `InvalidInputError, got ${String(err)}`);
    assert.equal(err.retryable, false);
    assert.match(err.message, /^the uploaded file /);
    assert.match(err.message, pattern);
    assert.ok(!err.message.includes(dir), `no server path in "${err.message}"`);
    assert.ok(!/\n\s+at /.test(err.message), 'no stack trace in the message');
    return true;
  });
}

void test('a text file is refused as not decodable audio', async () => {
  const binary = join(dir, 'random.bin');
  await writeFile(binary, Buffer.from(Array.from({ length: 4096 }, (_, i) => (i * 7919) % 251)));
  await assertRefused(binary, /is not audio that can be decoded: /);
  const path = join(dir, 'notes.txt');
  await writeFile(path, 'these are meeting notes, not audio\n'.repeat(20));
  await assertRefused(path, /is not audio that can be decoded: it looks like a text file/);
});

void test('an empty file is refused as empty', async () => {
  const path = join(dir, 'empty.mp3');
  await writeFile(path, '');
  await assertRefused(path, /is empty/);
});

void test('a truncated mp3 is refused as truncated', async () => {
  const full = await readFile(await synthesizeSpeech(SENTENCE, { format: 'mp3', dir, name: 'whole' }));
  const path = join(dir, 'truncated.mp3');
  await writeFile(path, full.subarray(0, Math.floor(full.length * 0.4)));
  await assertRefused(path, /appears truncated or corrupt: its header declares \d+\.\d+ s/);
});

void test('a WAV with a header and no samples is refused as zero duration', async () => {
  const path = join(dir, 'zero.wav');
  await run('sox', ['-n', '-r', '16000', '-c', '1', '-b', '16', path, 'trim', '0', '0']);
  assert.equal((await stat(path)).size, 44);
  await assertRefused(path, /no audio samples/);
});

void test('a video without an audio track is refused', async () => {
  const path = join(dir, 'video.mp4');
  await run('ffmpeg', ['-nostdin', '-v', 'error', '-y', '-f', 'lavfi', '-i', 'testsrc=size=64x64:rate=5', '-t', '1', path]);
  await assertRefused(path, /is not audio that can be decoded: it has no audio track \(format .+, only video\)/);
});

/** What ffprobe (not our WAV reader) says of a file's first audio stream. */
async function probe(path: string): Promise<{ codec: string; sampleRate: number; channels: number; seconds: number }> {
  const { stdout } = await run('ffprobe', [
    '-v', 'error', '-select_streams', 'a:0', '-show_entries', 'stream=codec_name,sample_rate,channels:format=duration', '-of', 'json', path,
  ]);
  const j = JSON.parse(stdout) as { streams: { codec_name: string; sample_rate: string; channels: number }[]; format: { duration: string } };
  const s = j.streams[0];
  assert.ok(s, `an audio stream in ${path}`);
  return { codec: s.codec_name, sampleRate: Number(s.sample_rate), channels: s.channels, seconds: Number(j.format.duration) };
}

void test('the engine turns a 44.1 kHz stereo upload into 16 kHz mono PCM under its work dir and reports the duration', async () => {
  const input = await synthesizeSpeech(SENTENCE, { format: 'ogg', dir, name: 'engine-in', sampleRate: 44100, channels: 2 });
  const source = await probe(input);
  assert.deepEqual([source.sampleRate, source.channels], [44100, 2], 'the upload really is 44.1 kHz stereo');
  const workDir = await outDir('engine');
  const ctx: EngineTaskContext = {
    jobId: 'job1', taskId: 'prepare', stage: 'prepare', attempt: 1, config: {}, inputs: { audio: input }, workDir,
    signal: new AbortController().signal, log: silentLogger, measureModelLoad: (_m, load) => load(),
  };
  const engine = new AudioPrepareEngine();
  assert.equal(engine.engineId, 'audio-prepare');
  assert.equal(engine.stage, 'prepare');
  const result = await engine.process(ctx);
  const data = result.data as PrepareOutput;
  assert.equal(result.audioDurationSeconds, data.duration_seconds);
  assert.equal(data.original.container, 'ogg');
  assert.deepEqual([data.original.sample_rate, data.original.channels], [44100, 2]);
  assert.deepEqual([data.sample_rate, data.channels], [16000, 1]);
  const wavPath = join(workDir, 'prepared', 'audio.wav');
  assert.equal(result.blobs?.['audio.wav'], wavPath);
  // The file on disk is what the output claims: ffmpeg resampled and downmixed it, the speech kept its length.
  const prepared = await probe(wavPath);
  assert.deepEqual([prepared.codec, prepared.sampleRate, prepared.channels], ['pcm_s16le', 16000, 1]);
  assert.ok(Math.abs(prepared.seconds - data.duration_seconds) < 0.01, `file ${prepared.seconds} s vs reported ${data.duration_seconds} s`);
  assert.ok(Math.abs(data.duration_seconds - sourceSeconds) < 0.1, `prepared ${data.duration_seconds} s vs spoken ${sourceSeconds} s`);
  assert.ok(rms((await readWav(wavPath)).samples) > 0.01, 'the downmix kept the speech');

  const ac = new AbortController();
  ac.abort();
  await assert.rejects(engine.process({ ...ctx, signal: ac.signal }), CancelledError);
});

void test('an upload already in the working format (16 kHz mono 16-bit WAV) is used as it is, without ffmpeg; a cut one, or a per-channel job, goes through ffmpeg', async () => {
  const input = join(dir, 'ready.wav');
  await run('sox', ['-n', '-r', '16000', '-c', '1', '-b', '16', input, 'synth', '2.5', 'sine', '300']);
  const { output, blobs } = await prepareAudio({ input, outDir: await outDir('ready') });
  assert.equal(blobs['audio.wav'], input, 'the upload itself is the prepared file');
  assert.equal(output.duration_seconds, 2.5);
  assert.deepEqual(output.original, { codec: 'pcm_s16le', container: 'wav', sample_rate: 16000, channels: 1, duration_seconds: 2.5, bytes: (await stat(input)).size });
  assert.deepEqual(output.files, [{ name: 'audio.wav', duration_seconds: 2.5, bytes: (await stat(input)).size }]);

  // The same file cut to 40 %: its data chunk declares more than is there, so it goes through ffmpeg's path (which
  // decodes the samples present, as it did for every WAV before).
  const cut = join(dir, 'ready-cut.wav');
  const whole = await readFile(input);
  await writeFile(cut, whole.subarray(0, Math.floor(whole.length * 0.4)));
  const fromCut = await prepareAudio({ input: cut, outDir: await outDir('ready-cut') });
  assert.notEqual(fromCut.blobs['audio.wav'], cut, 'decoded by ffmpeg, not taken as it is');
  assert.ok(fromCut.output.duration_seconds < 1.05, `only the samples present: ${fromCut.output.duration_seconds} s`);
  // Per-channel jobs still get their channel files from ffmpeg.
  const split = await prepareAudio({ input, outDir: await outDir('ready-split'), perChannel: true });
  assert.deepEqual(split.output.files.map((f) => f.name), ['audio.wav', 'audio_ch0.wav']);
  assert.notEqual(split.blobs['audio.wav'], input);
});
