/** The gateway area: the HTTP and WebSocket API on uWebSockets.js against its ports (Kafka publisher, job reader, artifact store). */
export { createGatewayApp, type GatewayApp, type GatewayDeps } from './gateway-app.js';
export type { WebSocketRouteSpec } from './websocket-route.js';
export type { GatewaySocket, SendResult, SocketHandler, WebSocketLimits } from './websocket.js';
export type { ArtifactStore, JobCancelRequested, JobEventPublisher, JobReader, JobView, NewJobRecord, PublishHeaders, StageView, StoredSpan, TraceReader } from './ports.js';
export { traceWaterfall, type TraceWaterfall, type WaterfallSpan } from './trace-view.js';
export {
  jobStatusBody, jobViewFromState, parseStagesJson, stageRow, stageViewsFromTasks, stagesJson, traceIdFromTraceparent, transcriptFields,
  type JobStatusBody, type StageRow,
} from './job-view.js';
export { DEFAULT_TENANT, keyIdOf, type Principal } from './auth.js';
export {
  OPENAI_MODELS, RESPONSE_FORMATS, type OpenAiSyncResponder, type ResponseFormat, type TranscriptRenderers,
} from './transcriptions.js';
export { InMemoryJobReader, RecordingPublisher } from './memory-ports.js';
