/**
 * A long file in parts (DALSTON_CHUNK_SECONDS lowered to 30 s so the suite stays short): real LibriVox speech and
 * espeak sentences, about 80 s, split into three parts that two instances of the default engine transcribe in
 * parallel. The parts meet exactly, both instances take part, word times run on across the joins, and the merged
 * transcript is as accurate as one pass of the same model over the whole file.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { METRIC } from '../../core/observability-names.js';
import { createRecognizer } from '../../engines/asr/recognizers.js';
import { wordErrors } from '../../engines/asr/wer.js';
import { writeWav } from '../../engines/audio/wav.js';
import { MOONSHINE_TINY, batchEngineId } from '../../engines/models/catalogue.js';
import { ESPEAK_SENTENCES, FIXTURE_RATE, TESTDATA, parseSphinxTranscription, synthesize, withPauses } from '../../harness/speech-fixtures.js';
import { readWav } from '../../harness/wav.js';
import { scrape } from '../../harness/metrics-scrape.js';
import { TERMINAL, startHarness, type Harness } from '../../harness/pipeline-harness.js';

const ENGINE = batchEngineId(MOONSHINE_TINY);
let h: Harness;
let dir: string;
before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'dalston-long-'));
  h = await startHarness({
    name: 'long',
    engines: ['audio-prepare', { engineId: ENGINE, name: 'asr-0' }, { engineId: ENGINE, name: 'asr-1' }, 'merge'],
    env: { DALSTON_CHUNK_SECONDS: '30', DALSTON_TRANSCRIBE_ENGINE: ENGINE },
  });
});
after(async () => {
  await h?.stop();
  if (dir) await rm(dir, { recursive: true, force: true });
});

/** LibriVox recordings, espeak sentences, then the LibriVox recordings again, with 0.6 s pauses: audio and reference. */
async function longRecording(): Promise<{ samples: Float32Array; reference: string }> {
  const refs = parseSphinxTranscription(await readFile(join(TESTDATA, 'librivox', 'transcription'), 'utf8'));
  const librivox: { samples: Float32Array; text: string }[] = [];
  for (const [id, text] of refs) librivox.push({ samples: (await readWav(join(TESTDATA, 'librivox', `${id}.wav`))).samples, text });
  const espeak: { samples: Float32Array; text: string }[] = [];
  for (const text of ESPEAK_SENTENCES) espeak.push({ samples: await synthesize(text), text });
  const pieces = [...librivox, ...espeak, ...librivox];
  return { samples: withPauses(pieces.map((p) => p.samples), 0.6), reference: pieces.map((p) => p.text).join(' ') };
}

test('a long file is transcribed in parts on both engine instances, meeting exactly, as accurate as one pass', async (t) => {
  const { samples, reference } = await longRecording();
  const seconds = samples.length / FIXTURE_RATE;
  assert.ok(seconds > 60 && seconds <= 90, `${seconds.toFixed(1)} s: three parts of at most 30 s`);
  const file = join(dir, 'long.wav');
  await writeWav(file, samples, FIXTURE_RATE);

  const res = await h.submit(file, { language: 'en' });
  assert.equal(res.status, 201, JSON.stringify(res.body));
  const job = await h.waitFor(res.body.id, (j) => TERMINAL.has(j.status), 300_000);
  assert.equal(job.status, 'completed', JSON.stringify(job.error));
  assert.deepEqual(job.stages.map((s) => `${s.stage}:${s.status}`), [
    'prepare:completed', 'transcribe:completed', 'transcribe_part1:completed', 'transcribe_part2:completed', 'merge:completed',
  ]);
  assert.ok(job.stages.filter((s) => s.stage.startsWith('transcribe')).every((s) => s.engine_id === ENGINE));

  // Each part's own output: the span it transcribed. The spans tile the file.
  const spans: { start: number; end: number }[] = [];
  for (const stage of job.stages.filter((s) => s.stage.startsWith('transcribe'))) {
    const art = await h.api(`/v1/audio/transcriptions/${job.id}/tasks/${stage.task_id}/artifacts`);
    assert.equal(art.status, 200);
    const out = ((await art.json()) as { output: { data: { span?: { start: number; end: number } } } }).output.data;
    assert.ok(out.span, `${stage.stage} reports its span`);
    spans.push(out.span);
  }
  assert.equal(spans[0]?.start, 0);
  for (let i = 1; i < spans.length; i++) assert.equal(spans[i]?.start, spans[i - 1]?.end, `part ${i} starts where part ${i - 1} ends`);
  assert.ok(Math.abs((spans.at(-1)?.end ?? 0) - seconds) < 0.01, 'the last part ends with the file');

  // Both instances of the engine took parts (they are dispatched on consecutive partitions of its queue).
  const perInstance: number[] = [];
  for (const name of ['asr-0', 'asr-1']) {
    const svc = h.services.find((s) => s.spec.name === name);
    assert.ok(svc, name);
    const done = (await scrape(svc)).find((s) => s.name === METRIC.engineTasksProcessed && s.labels['stage'] === 'transcribe' && s.labels['status'] === 'success');
    perInstance.push(done?.value ?? 0);
  }
  assert.equal(perInstance.reduce((a, b) => a + b, 0), 3, `three parts in all: ${JSON.stringify(perInstance)}`);
  assert.ok(perInstance.every((n) => n >= 1), `both instances transcribed parts: ${JSON.stringify(perInstance)}`);

  // Word times run on across the joins; nothing doubled at a join.
  const words = (job.segments ?? []).flatMap((s) => s.words ?? []);
  for (let i = 1; i < words.length; i++) assert.ok((words[i]?.start ?? 0) >= (words[i - 1]?.start ?? 0), `word ${i} starts after word ${i - 1}`);
  assert.ok((words.at(-1)?.end ?? 0) <= seconds + 0.05, 'inside the audio');

  // One pass of the same model over the whole file, in this process.
  const recognizer = await createRecognizer(MOONSHINE_TINY.id, { homeDir: process.env['DALSTON_HOME'] ?? join(process.cwd(), '.dalston') });
  await recognizer.load();
  const single = await recognizer.recognize({ audio: samples, language: 'en' });
  await recognizer.close();
  const parts = wordErrors(reference, job.text ?? '');
  const whole = wordErrors(reference, single.text);
  t.diagnostic(`${seconds.toFixed(1)} s in 3 parts: WER ${(parts.wer * 100).toFixed(1)} % (${parts.errors}/${parts.refWords}); one pass ${(whole.wer * 100).toFixed(1)} % (${whole.errors}/${whole.refWords}); parts per instance ${JSON.stringify(perInstance)}`);
  // Two joins: at most a word lost or split at each, over ~190 reference words (about 1 point each).
  assert.ok(parts.errors <= whole.errors + 2, `parts WER ${(parts.wer * 100).toFixed(1)} % vs one pass ${(whole.wer * 100).toFixed(1)} %: ${job.text}`);
});
