/**
 * The launcher tests and benches start services with: a port taken between its choice and the child's bind (by a
 * client connection, another test process) must not make a start fail, and whatever else answers on that port must
 * not be taken for the service.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { createServer } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadConfig } from '../../core/config.js';
import { silentLogger } from '../../core/logger.js';
import { freePort } from '../../infra/ports.js';
import { launchOnFreePort } from '../../infra/service-launcher.js';
import { startTestKafka } from '../../harness/kafka-fixture.js';

void test('a service whose port another process took is launched again on a free port; the other process answering /health is not taken for it', async () => {
  const kafka = await startTestKafka(silentLogger);
  const logDir = await mkdtemp(join(tmpdir(), 'dalston-launcher-'));
  // Another process on the port the launcher is first given, answering /health as a Dalston service would.
  const stranger = createServer((_req, res) => res.end(JSON.stringify({ status: 'ok', pid: 1 })));
  await new Promise<void>((resolve) => stranger.listen(0, '127.0.0.1', resolve));
  const taken = (stranger.address() as { port: number }).port;
  const picks = [taken];
  const env = {
    DALSTON_KAFKA_BROKERS: kafka.brokers.join(','), DALSTON_TOPIC_PREFIX: `launcher-${randomUUID().slice(0, 8)}.`,
    DALSTON_HOME: loadConfig().homeDir, DALSTON_LOG_LEVEL: 'info',
  };
  try {
    const svc = await launchOnFreePort({ name: 'realtime-launcher', kind: 'realtime' }, { env, logDir }, 120_000, async () => picks.shift() ?? freePort());
    try {
      assert.notEqual(svc.spec.port, taken, 'launched again on another port');
      const health = (await (await fetch(`http://127.0.0.1:${svc.spec.port}/health`)).json()) as { status: string; pid: number };
      assert.deepEqual(health, { status: 'ok', pid: svc.pid });
      const log = await readFile(svc.logFile, 'utf8');
      assert.match(log, /EADDRINUSE/, 'the first child exited because the port was taken');
    } finally {
      await svc.stop();
    }
  } finally {
    stranger.close();
    await kafka.stop();
    await rm(logDir, { recursive: true, force: true });
  }
});
