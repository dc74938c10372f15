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
import { VAD_ENGINE_ID } from '../../engines/vad/vad-engine.js';
import { TESTDATA, parseSphinxTranscription } from '../../harness/speech-fixtures.js';
import { readWav } from '../../harness/wav.js';
import { TERMINAL, startHarness, type Harness } from '../../harness/pipeline-harness.js';

const ENGINE = batchEngineId(MOONSHINE_TINY);
let h: Harness;
before(async () => {
  h = await startHarness({ name: 'neural', engines: ['audio-prepare', VAD_ENGINE_ID, ENGINE, 'merge'] });
});
after(async () => {
  await h?.stop();
});

test('moonshine-tiny transcribes a LibriVox recording with the vad stage; word times lie inside Silero speech regions', async (t) => {
  const refs = parseSphinxTranscription(await readFile(join(TESTDATA, 'librivox', 'transcription'), 'utf8'));
  // 0870, the longest clip (22 words): one error is 4.5 %, so the bound below has room for about two.
  const id = 'sense_and_sensibility_01_austen_64kb-0870';
  const reference = refs.get(id);
  assert.ok(reference);
  const file = join(TESTDATA, 'librivox', `${id}.wav`);
  const res = await h.submit(file, { model: MOONSHINE_TINY.id, language: 'en', vad: 'true' });
  assert.equal(res.status, 201, JSON.stringify(res.body));
  const job = await h.waitFor(res.body.id, (j) => TERMINAL.has(j.status), 180_000);
  assert.equal(job.status, 'completed', JSON.stringify(job.error));
  assert.equal(job.stages.find((s) => s.stage === 'transcribe')?.engine_id, ENGINE, 'the job named its model; the actor chose its engine');
  assert.deepEqual(job.stages.map((s) => `${s.stage}:${s.status}`), ['prepare:completed', 'vad:completed', 'transcribe:completed', 'merge:completed']);

  // The vad stage's own output: Silero regions over the prepared audio, served as the task's artifact.
  const vadStage = job.stages.find((s) => s.stage === 'vad');
  const art = await h.api(`/v1/audio/transcriptions/${job.id}/tasks/${vadStage?.task_id ?? ''}/artifacts`);
  assert.equal(art.status, 200);
  const vadOut = ((await art.json()) as { output: { data: { regions: { start: number; end: number }[]; speech_seconds: number } } }).output.data;
  assert.ok(vadOut.regions.length > 0 && vadOut.speech_seconds > 1, `vad stage found speech: ${JSON.stringify(vadOut)}`);
  // What a client gets: the final transcript carries those regions in metadata.speech_regions (README, vad=true).
  const exported = await h.api(`/v1/audio/transcriptions/${job.id}/export/json`);
  assert.equal(exported.status, 200);
  const transcript = (await exported.json()) as { metadata: { speech_regions?: { start: number; end: number }[]; pipeline_stages: string[] } };
  assert.deepEqual(transcript.metadata.speech_regions, vadOut.regions.map((r) => ({ start: r.start, end: r.end })), 'the transcript carries the vad stage\'s regions');
  assert.deepEqual(transcript.metadata.pipeline_stages, ['prepare', 'vad', 'transcribe', 'merge']);

  const wer = wordErrors(reference, job.text ?? '');
  t.diagnostic(`moonshine-tiny via the pipeline on ${id}: WER ${(wer.wer * 100).toFixed(1)} % (${wer.errors}/${wer.refWords})`);
  // Measured 0 % (0/22) through this pipeline; pocketsphinx, the baseline, gets 31.8 % on the same clip.
  assert.ok(wer.wer <= 0.1, `moonshine-tiny WER ${(wer.wer * 100).toFixed(1)} % on ${id}: ${job.text}`);

  const segments = job.segments ?? [];
  const allWords = segments.flatMap((s) => s.words ?? []);
  assert.ok(segments.length > 0 && allWords.length >= 5, 'segments with words');
  const vad = await SileroVad.load(process.env['DALSTON_HOME'] ?? join(process.cwd(), '.dalston'));
  const regions = await vad.detectSpeech((await readWav(file)).samples);
  await vad.close();
  assert.ok(regions.length > 0, 'Silero finds speech');
  assert.equal(vadOut.regions.length, regions.length, 'the pipeline stage and a direct Silero run agree on the regions');
  const slack = 0.25; // VAD padding and frame granularity (32 ms frames)
  for (const w of allWords) {
    assert.ok(w.start <= w.end, `${w.text}: start before end`);
    const inside = regions.some((r) => w.start >= r.start - slack && w.end <= r.end + slack);
    assert.ok(inside, `word "${w.text}" ${w.start.toFixed(2)}-${w.end.toFixed(2)} s lies inside speech ${JSON.stringify(regions)}`);
  }
  for (const s of segments) assert.ok(s.start >= 0 && s.end <= (job.audio_duration_seconds ?? 0) + 0.05, 'segment inside the audio');
});
