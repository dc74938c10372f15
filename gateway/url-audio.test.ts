/**
 * Audio from a URL on the gateway's own routes, against real HTTP servers on loopback: an allow-listed host is
 * fetched into the store (native `audio_url`); a loopback, private or link-local target is refused with a 400
 * unless allow-listed, also when an allowed host redirects to it; size, status and time limits answer clearly;
 * nothing is stored by a refused or failed fetch. The ranges themselves are checked as plain values.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import { readFile } from 'node:fs/promises';
import type { AddressInfo } from 'node:net';
import { artifactKeys } from '../storage/index.js';
import { TEST_API_KEY, makeWav, startHarness } from './test-harness.js';
import { UrlAllowList } from '../core/network-policy.js';

/** A loopback server: /a.wav (the WAV), /big (over the limit), /slow (never answers), /gone (404), /to?u=… (302). */
async function audioServer(wav: Buffer): Promise<{ server: Server; port: number }> {
  const server = createServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://x');
    if (url.pathname === '/a.wav') res.writeHead(200, { 'content-type': 'audio/wav' }).end(wav);
    else if (url.pathname === '/big') {
      res.writeHead(200, { 'content-type': 'audio/wav' }); // no Content-Length: the limit must trip while streaming
      const chunk = Buffer.alloc(64 * 1024, 1);
      const pump = () => {
        while (res.write(chunk)) if (res.writableLength > 1e6) break;
      };
      res.on('drain', pump);
      pump();
    } else if (url.pathname === '/slow') res.writeHead(200).write('RIFF'); // and nothing more
    else if (url.pathname === '/to') res.writeHead(302, { location: url.searchParams.get('u') ?? '/' }).end();
    else res.writeHead(404).end();
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return { server, port: (server.address() as AddressInfo).port };
}

async function post(base: string, fields: Record<string, string>): Promise<{ status: number; body: { id?: string; error?: { code: string; message: string } } }> {
  const form = new FormData();
  for (const [k, v] of Object.entries(fields)) form.append(k, v);
  const res = await fetch(`${base}/v1/audio/transcriptions`, { method: 'POST', body: form, headers: { authorization: `Bearer ${TEST_API_KEY}` } });
  return { status: res.status, body: (await res.json()) as { id?: string; error?: { code: string; message: string } } };
}

void test('UrlAllowList: public addresses pass; loopback, private, link-local, CGNAT, unique-local and IPv4-mapped ones do not unless listed', () => {
  const none = new UrlAllowList([]);
  for (const a of ['8.8.8.8', '1.1.1.1', '2606:4700::1111']) assert.equal(none.allowsAddress(a), true, a);
  for (const a of ['127.0.0.1', '127.9.9.9', '10.1.2.3', '172.16.0.1', '172.31.255.255', '192.168.1.1', '169.254.169.254', '100.64.0.1', '0.0.0.0', '::1', '::', 'fe80::1', 'fd00::1', '::ffff:127.0.0.1', '::ffff:10.0.0.1', '224.0.0.1']) {
    assert.equal(none.allowsAddress(a), false, a);
  }
  assert.equal(none.allowsAddress('172.32.0.1'), true, 'just outside 172.16/12');
  const some = new UrlAllowList(['10.0.0.0/8', '127.0.0.1', 'Media.Internal']);
  assert.equal(some.allowsAddress('10.200.0.1'), true);
  assert.equal(some.allowsAddress('127.0.0.1'), true);
  assert.equal(some.allowsAddress('127.0.0.2'), false);
  assert.equal(some.allowsName('media.internal'), true);
  assert.equal(some.allowsName('other.internal'), false);
});

void test('audio_url: an allow-listed loopback server is fetched into the store; a refused or failed fetch is a clear error that stores nothing', async () => {
  const wavPath = await makeWav((await import('node:os')).tmpdir(), 1);
  const wav = await readFile(wavPath);
  const { server, port } = await audioServer(wav);
  // Only 127.0.0.1 is allowed: localhost's other loopback addresses, e.g. 127.0.0.2, stay refused.
  const h = await startHarness({ urlAllowHosts: ['127.0.0.1'], uploadMaxBytes: 512 * 1024, urlFetchTimeoutSeconds: 2 });
  const base = `http://127.0.0.1:${port}`;
  try {
    const ok = await post(h.base, { audio_url: `${base}/a.wav`, language: 'en' });
    assert.equal(ok.status, 201, JSON.stringify(ok.body));
    const jobId = String(ok.body.id);
    assert.deepEqual(await h.store.get(artifactKeys.originalAudio(jobId, 'wav')), wav, 'the fetched bytes are stored under the job');
    assert.deepEqual(h.publisher.created[0]?.msg.audio, { key: artifactKeys.originalAudio(jobId, 'wav'), filename: 'a.wav', bytes: wav.length, contentType: 'audio/wav' });

    const cases: [Record<string, string>, number, string, RegExp][] = [
      [{ audio_url: `http://127.0.0.2:${port}/a.wav` }, 400, 'url_not_allowed', /127\.0\.0\.2.*allow-listed/],
      [{ audio_url: `http://169.254.169.254/latest/meta-data/` }, 400, 'url_not_allowed', /169\.254\.169\.254/],
      [{ audio_url: `http://[::1]:${port}/a.wav` }, 400, 'url_not_allowed', /::1/],
      // An allowed host redirecting to a refused one: the redirect is checked again.
      [{ audio_url: `${base}/to?u=${encodeURIComponent(`http://127.0.0.2:${port}/a.wav`)}` }, 400, 'url_not_allowed', /127\.0\.0\.2/],
      [{ audio_url: `${base}/to?u=${encodeURIComponent('http://10.0.0.1/a.wav')}` }, 400, 'url_not_allowed', /10\.0\.0\.1/],
      [{ audio_url: 'file:///etc/passwd' }, 400, 'invalid_url', /only http and https/],
      [{ audio_url: 'not a url' }, 400, 'invalid_url', /not a URL/],
      [{ audio_url: `http://user:pw@127.0.0.1:${port}/a.wav` }, 400, 'invalid_url', /credentials/],
      [{ audio_url: `${base}/gone` }, 400, 'url_fetch_failed', /answered 404/],
      [{ audio_url: `${base}/slow` }, 400, 'url_fetch_failed', /took too long/],
      [{ audio_url: `${base}/big` }, 413, 'file_too_large', /exceeds the limit of 524288 bytes/],
    ];
    for (const [fields, status, code, message] of cases) {
      const r = await post(h.base, fields);
      assert.equal(r.status, status, `${JSON.stringify(fields)} → ${JSON.stringify(r.body)}`);
      assert.equal(r.body.error?.code, code, JSON.stringify(fields));
      assert.match(r.body.error?.message ?? '', message);
    }
    const both = new FormData();
    both.append('file', new Blob([wav]), 'a.wav');
    both.append('audio_url', `${base}/a.wav`);
    const bothRes = await fetch(`${h.base}/v1/audio/transcriptions`, { method: 'POST', body: both, headers: { authorization: `Bearer ${TEST_API_KEY}` } });
    assert.equal(bothRes.status, 400);
    assert.match(((await bothRes.json()) as { error: { message: string } }).error.message, /either as "file" or as "audio_url"/);
    assert.equal(h.publisher.created.length, 1, 'only the allowed fetch became a job');
    assert.deepEqual(await h.storedFiles(), [artifactKeys.originalAudio(jobId, 'wav')], 'refused and failed fetches left nothing stored');
  } finally {
    await h.close();
    server.closeAllConnections();
    server.close();
  }
});
