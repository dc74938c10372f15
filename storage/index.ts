/** The artifact store: pick the backend from configuration. */
import { join } from 'node:path';
import type { DalstonConfig } from '../core/config.js';
import type { ArtifactStore } from './artifact-store.js';
import { FsArtifactStore } from './fs-artifact-store.js';
import { S3ArtifactStore } from './s3-artifact-store.js';

export { artifactKeys, assertSafeKey, isTaskOutputDocument, type ArtifactStore, type ByteRange, type TaskOutputDocument } from './artifact-store.js';
export { NotFoundError } from './errors.js';
export { FsArtifactStore } from './fs-artifact-store.js';
export { S3ArtifactStore } from './s3-artifact-store.js';

export function createArtifactStore(config: DalstonConfig): ArtifactStore {
  if (config.storageBackend === 's3') {
    return new S3ArtifactStore({
      bucket: config.s3Bucket, region: config.s3Region, ...(config.s3Endpoint ? { endpoint: config.s3Endpoint } : {}),
    });
  }
  return new FsArtifactStore(join(config.homeDir, 'artifacts'));
}
