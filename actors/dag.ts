/**
 * Builds a job's task graph from its request. Today: prepare → transcribe → merge, with per-channel fan-out
 * (transcribe_ch0…N) when asked. Optional stages (vad, align, diarize, pii_detect, audio_redact) slot in by
 * adding nodes and edges here; nothing else in the actor changes.
 */
import { baseStage, type JobParams, type TaskState } from '../streams/index.js';

export interface EngineSelection {
  /** Engine id that serves a stage for a given model (undefined model: the default). */
  engineFor(stage: string, model: string | undefined): string;
}

export interface DagNode {
  readonly stage: string;
  readonly dependsOn: readonly string[];
  readonly required: boolean;
  readonly channel?: number;
}

export function planStages(params: JobParams, channels = 1): DagNode[] {
  const nodes: DagNode[] = [{ stage: 'prepare', dependsOn: [], required: true }];
  // VAD runs beside transcription (recognisers cut their own windows); merge carries its regions.
  if (params.vad) nodes.push({ stage: 'vad', dependsOn: ['prepare'], required: true });
  const transcribeStages: string[] = [];
  if (params.perChannel && channels > 1) {
    for (let ch = 0; ch < channels; ch++) {
      nodes.push({ stage: `transcribe_ch${ch}`, dependsOn: ['prepare'], required: true, channel: ch });
      transcribeStages.push(`transcribe_ch${ch}`);
    }
  } else {
    nodes.push({ stage: 'transcribe', dependsOn: ['prepare'], required: true });
    transcribeStages.push('transcribe');
  }
  nodes.push({ stage: 'merge', dependsOn: ['prepare', ...(params.vad ? ['vad'] : []), ...transcribeStages], required: true });
  return nodes;
}

/** Task ids are derived from job id and stage, so a replayed job.created builds the same graph. */
export function taskIdFor(jobId: string, stage: string): string {
  return `${jobId.replace(/^job_/, 'task_')}_${stage}`;
}

export function buildDag(jobId: string, params: JobParams, engines: EngineSelection, channels = 1): TaskState[] {
  return planStages(params, channels).map((node) => ({
    taskId: taskIdFor(jobId, node.stage),
    stage: node.stage,
    engineId: engines.engineFor(baseStage(node.stage), params.model),
    dependsOn: [...node.dependsOn],
    required: node.required,
    status: 'pending',
    attempt: 0,
    retries: 0,
    config: {
      ...(params.language && params.language !== 'auto' ? { language: params.language } : {}),
      ...(params.model && params.model !== 'auto' ? { model: params.model } : {}),
      ...(node.channel !== undefined ? { channel: node.channel } : {}),
      ...(params.timestampsGranularity ? { timestampsGranularity: params.timestampsGranularity } : {}),
      ...(node.stage === 'prepare' && params.perChannel ? { perChannel: true } : {}),
      ...(node.stage.startsWith('transcribe') && params.task === 'translate' ? { task: 'translate' as const } : {}),
    },
    attempts: [],
  }));
}
