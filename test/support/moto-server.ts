/**
 * moto's S3 server on a free loopback port: the only S3 protocol implementation this machine can reach (installed by
 * `./dalston test` into $DALSTON_HOME's venv, see infra/test-tools.ts). A missing moto is a failure, not a skip.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { CreateBucketCommand, S3Client } from '@aws-sdk/client-s3';
import { REPO_ROOT } from '../../core/config.js';
import { freePort } from '../../infra/ports.js';
import { motoServerPath } from '../../infra/test-tools.js';

/**
 * Credentials and settings an S3 client needs to talk to moto (it accepts any keys; the SDK insists on some). Metadata
 * lookups are switched off so nothing ever asks the EC2 metadata address.
 */
export const MOTO_AWS_ENV: Readonly<Record<string, string>> = {
  AWS_ACCESS_KEY_ID: 'test', AWS_SECRET_ACCESS_KEY: 'test', AWS_EC2_METADATA_DISABLED: 'true',
};
export const MOTO_REGION = 'us-east-1';

export interface MotoS3 {
  readonly endpoint: string;
  /** A client of this server (path-style addressing, the credentials above). */
  readonly client: S3Client;
  createBucket(name: string): Promise<void>;
  /** Stops the server and waits for its process to exit. */
  stop(): Promise<void>;
}

export async function startMotoS3(timeoutMs = 20_000): Promise<MotoS3> {
  const binary = motoServerPath(process.env['DALSTON_HOME'] ?? join(REPO_ROOT, '.dalston'));
  if (!existsSync(binary)) throw new Error(`moto_server not found at ${binary}: run ./dalston test, which installs it`);
  // The test process's own S3 clients read the same variables the child services get.
  for (const [k, v] of Object.entries(MOTO_AWS_ENV)) process.env[k] = v;
  const port = await freePort();
  const proc: ChildProcess = spawn(binary, ['-H', '127.0.0.1', '-p', String(port)], { stdio: 'ignore' });
  const exited = new Promise<void>((resolve) => proc.once('exit', () => resolve()));
  const endpoint = `http://127.0.0.1:${port}`;
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      if ((await fetch(endpoint)).status < 500) break;
    } catch {
      // not listening yet
    }
    if (proc.exitCode !== null || Date.now() > deadline) {
      proc.kill('SIGKILL');
      throw new Error(`moto S3 server did not start on ${endpoint} (exit code ${proc.exitCode ?? 'none'})`);
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  const client = new S3Client({ region: MOTO_REGION, endpoint, forcePathStyle: true });
  return {
    endpoint, client,
    async createBucket(name) {
      await client.send(new CreateBucketCommand({ Bucket: name }));
    },
    async stop() {
      client.destroy();
      if (proc.exitCode === null && proc.signalCode === null) {
        proc.kill('SIGTERM');
        await exited;
      }
    },
  };
}
