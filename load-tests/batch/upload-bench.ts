/**
 * Large-upload benchmark (not a test): streams one multipart upload of --gigabytes GB (a WAV of generated noise,
 * made on the fly, never on disk on the client side) to the gateway of a real stack (Kafka, ClickHouse, gateway,
 * actor host; no engines, so the job waits) and samples the gateway's RSS every 100 ms. Reports the upload rate,
 * the gateway's RSS before, at peak (the kernel's VmHWM) and after, and checks that the stored object has every
 * byte. Bodies of 1 GB or more go chunked (the gateway's HTTP parser caps Content-Length at 999,999,999). The job is
 * then cancelled and its audio removed. Prints a table and writes JSON to load-tests/results/.
 *
 *   npm run bench:upload -- [--gigabytes 2]
 */
import { request } from 'node:http';
import { mkdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { REPO_ROOT } from '../../core/config.js';
import { startHarness } from '../../harness/pipeline-harness.js';

const BOUNDARY = 'dalstonbenchboundary';
const CHUNK = 256 * 1024;

/** A 16 kHz mono 16-bit WAV header for `dataBytes` of samples (sizes clamp at 4 GiB, as WAV's fields do). */
function wavHeader(dataBytes: number): Buffer {
  const h = Buffer.alloc(44);
  h.write('RIFF', 0);
  h.writeUInt32LE(Math.min(0xffffffff, 36 + dataBytes), 4);
  h.write('WAVEfmt ', 8);
  h.writeUInt32LE(16, 16);
  h.writeUInt16LE(1, 20);
  h.writeUInt16LE(1, 22);
  h.writeUInt32LE(16000, 24);
  h.writeUInt32LE(32000, 28);
  h.writeUInt16LE(2, 32);
  h.writeUInt16LE(16, 34);
  h.write('data', 36);
  h.writeUInt32LE(Math.min(0xffffffff, dataBytes), 40);
  return h;
}

/** Resident and peak resident memory of a process, in MiB, from /proc. */
async function memoryOf(pid: number): Promise<{ rssMiB: number; hwmMiB: number }> {
  const status = await readFile(`/proc/${pid}/status`, 'utf8');
  const kib = (field: string) => Number(new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(status)?.[1] ?? NaN);
  return { rssMiB: kib('VmRSS') / 1024, hwmMiB: kib('VmHWM') / 1024 };
}

/** Streams the multipart body at the socket's pace (write → drain), answering with the gateway's status and body. */
function upload(url: string, apiKey: string, fileBytes: number): Promise<{ status: number; body: string }> {
  const head = Buffer.from(`--${BOUNDARY}\r\nContent-Disposition: form-data; name="file"; filename="long.wav"\r\nContent-Type: audio/wav\r\n\r\n`);
  const tail = Buffer.from(`\r\n--${BOUNDARY}--\r\n`);
  const noise = Buffer.alloc(CHUNK);
  for (let i = 0; i < CHUNK; i += 2) noise.writeInt16LE(Math.round((Math.random() - 0.5) * 2000), i);
  return new Promise((resolve, reject) => {
    // Chunked: uWS v20.30 (the gateway's HTTP parser) takes a Content-Length of at most 999,999,999 and cuts the
    // connection above it, so a body of 1 GB or more must come chunked (see the README's upload notes).
    const length = head.length + fileBytes + tail.length;
    const req = request(`${url}/v1/audio/transcriptions`, {
      method: 'POST',
      headers: {
        authorization: `Bearer ${apiKey}`,
        'content-type': `multipart/form-data; boundary=${BOUNDARY}`,
        ...(length <= 999_999_999 ? { 'content-length': String(length) } : {}),
      },
    });
    req.on('response', (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => (body += c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
    });
    req.on('error', reject);
    void (async () => {
      req.write(head);
      req.write(wavHeader(fileBytes - 44));
      let sent = 44;
      while (sent < fileBytes) {
        const n = Math.min(CHUNK, fileBytes - sent);
        sent += n;
        if (!req.write(n === CHUNK ? noise : noise.subarray(0, n))) await new Promise((r) => req.once('drain', r));
      }
      req.end(tail);
    })();
  });
}

async function main(): Promise<void> {
  const { values } = parseArgs({ options: { gigabytes: { type: 'string', default: '2' } } });
  const fileBytes = Math.round(Number(values.gigabytes) * 1e9);
  const home = process.env['DALSTON_HOME'] ?? join(REPO_ROOT, '.dalston');
  const h = await startHarness({
    name: 'upload', engines: [],
    env: { DALSTON_LOG_LEVEL: 'warn', DALSTON_UPLOAD_MAX_BYTES: String(fileBytes + 1024 * 1024), DALSTON_HOME: home },
  });
  let jobId = '';
  try {
    const { pid } = (await (await h.api('/health')).json()) as { pid: number };
    const before = await memoryOf(pid);
    const samples: number[] = [];
    let sampling = true;
    const sampler = (async () => {
      while (sampling) {
        samples.push((await memoryOf(pid)).rssMiB);
        await new Promise((r) => setTimeout(r, 100));
      }
    })();
    const started = Date.now();
    const res = await upload(h.gatewayUrl, h.apiKey, fileBytes);
    const seconds = (Date.now() - started) / 1000;
    sampling = false;
    await sampler;
    const after = await memoryOf(pid);
    if (res.status !== 201) throw new Error(`upload answered ${res.status}: ${res.body}`);
    jobId = (JSON.parse(res.body) as { id: string }).id;
    const storedBytes = (await stat(join(home, 'artifacts', 'jobs', jobId, 'audio', 'original.wav'))).size;
    const result = {
      benchmark: 'upload',
      at: new Date().toISOString(),
      machine: { cores: (await import('node:os')).availableParallelism(), node: process.version },
      fileBytes,
      storedBytes,
      seconds: Number(seconds.toFixed(1)),
      mbPerSecond: Number((fileBytes / 1e6 / seconds).toFixed(1)),
      gatewayRssMiB: {
        before: Number(before.rssMiB.toFixed(1)),
        peakSampled: Number(Math.max(...samples).toFixed(1)),
        peakKernel: Number(after.hwmMiB.toFixed(1)),
        after: Number(after.rssMiB.toFixed(1)),
      },
      samples: samples.length,
    };
    console.log(`upload of ${(fileBytes / 1e9).toFixed(2)} GB: ${result.seconds} s (${result.mbPerSecond} MB/s); stored ${storedBytes} bytes${storedBytes === fileBytes ? ' (all)' : ' (MISMATCH)'}`);
    console.log(`gateway RSS MiB: before ${result.gatewayRssMiB.before}, peak sampled ${result.gatewayRssMiB.peakSampled}, peak (VmHWM) ${result.gatewayRssMiB.peakKernel}, after ${result.gatewayRssMiB.after}`);
    const dir = join(REPO_ROOT, 'load-tests', 'results');
    await mkdir(dir, { recursive: true });
    const file = join(dir, `upload-${result.at.replace(/[:.]/g, '-')}.json`);
    await writeFile(file, `${JSON.stringify(result, null, 2)}\n`);
    console.log(`wrote ${file}`);
    if (storedBytes !== fileBytes) process.exitCode = 1;
  } finally {
    if (jobId) {
      await h.api(`/v1/audio/transcriptions/${jobId}/cancel`, { method: 'POST' }).catch(() => undefined);
      await rm(join(home, 'artifacts', 'jobs', jobId), { recursive: true, force: true });
    }
    await h.stop();
  }
}

main().catch((err: unknown) => {
  console.error(err);
  process.exit(1);
});
