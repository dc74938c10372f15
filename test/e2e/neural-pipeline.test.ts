/**
 * A batch job through the pipeline with the neural recogniser (Moonshine tiny in onnxruntime-node): segments and
 * word timestamps come back, and every word's time falls inside the speech Silero VAD finds in the same audio.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { readFile } from 'node:fs/promises';
import { wordErrors } from '../../engines/asr/wer.js';
import { MOONSHINE_TINY, batchEngineId } from '../../engines/models/catalogue.js';
import { SileroVad } from '../../engines/vad/index.js';
import { TESTDATA, parseSphinxTranscription } from '../fixtures/speech-fixtures.js';
import { readWav } from '../fixtures/wav.js';
import { TERMINAL, startHarness, type Harness } from './pipeline-harness.js';

const ENGINE = batchEngineId(MOONSHINE_TINY);
let h: Harness;
before(async () => {
  h = await startHarness({ name: 'neural', engines: ['audio-prepare', ENGINE, 'merge'] });
});
after(async () => {
  await h?.stop();
});

test('moonshine-tiny transcribes a LibriVox recording; word times lie inside Silero speech regions', async (t) => {
  const refs = parseSphinxTranscription(await readFile(join(TESTDATA, 'librivox', 'transcription'), 'utf8'));
  const [id, reference] = [...refs.entries()][1] ?? ['', ''];
  const file = join(TESTDATA, 'librivox', `${id}.wav`);
  const res = await h.submit(file, { model: MOONSHINE_TINY.id, language: 'en' });
  assert.equal(res.status, 201, JSON.stringify(res.body));
  const job = await h.waitFor(res.body.id, (j) => TERMINAL.has(j.status), 180_000);
  assert.equal(job.status, 'completed', JSON.stringify(job.error));
  assert.equal(job.stages.find((s) => s.stage === 'transcribe')?.engine_id, ENGINE, 'the job named its model; the actor chose its engine');

  const wer = wordErrors(reference, job.text ?? '');
  t.diagnostic(`moonshine-tiny via the pipeline on ${id}: WER ${(wer.wer * 100).toFixed(1)} % (${wer.errors}/${wer.refWords})`);
  assert.ok(wer.wer <= 0.35, `a neural recogniser does far better than the baseline: ${job.text}`);

  const segments = job.segments ?? [];
  const allWords = segments.flatMap((s) => s.words ?? []);
  assert.ok(segments.length > 0 && allWords.length >= 5, 'segments with words');
  const vad = await SileroVad.load(process.env['DALSTON_HOME'] ?? join(process.cwd(), '.dalston'));
  const regions = await vad.detectSpeech((await readWav(file)).samples);
  await vad.close();
  assert.ok(regions.length > 0, 'Silero finds speech');
  const slack = 0.25; // VAD padding and frame granularity (32 ms frames)
  for (const w of allWords) {
    assert.ok(w.start <= w.end, `${w.text}: start before end`);
    const inside = regions.some((r) => w.start >= r.start - slack && w.end <= r.end + slack);
    assert.ok(inside, `word "${w.text}" ${w.start.toFixed(2)}-${w.end.toFixed(2)} s lies inside speech ${JSON.stringify(regions)}`);
  }
  for (const s of segments) assert.ok(s.start >= 0 && s.end <= (job.audio_duration_seconds ?? 0) + 0.05, 'segment inside the audio');
});
