/**
 * Runs a tool (ffmpeg, ffprobe, pocketsphinx) as a child process tied to a task's AbortSignal: when the signal
 * fires the process is killed at once (SIGKILL) and the call rejects with CancelledError. Output is captured
 * with a bound, so a chatty or hostile input cannot grow memory without limit.
 */
import { spawn } from 'node:child_process';
import { CancelledError, DependencyUnavailableError } from '../../core/errors.js';

export interface RunProcessOptions {
  readonly signal?: AbortSignal;
  /** Bytes of stdout kept; the rest is dropped and `stdoutTruncated` set. @default 16 MiB */
  readonly maxStdoutBytes?: number;
  /** Bytes of stderr kept (the tail is what explains a failure). @default 64 KiB */
  readonly maxStderrBytes?: number;
}

export interface ProcessOutput {
  /** Exit code, or null when the process died from a signal. */
  readonly code: number | null;
  readonly stdout: string;
  readonly stderr: string;
  readonly stdoutTruncated: boolean;
}

const DEFAULT_MAX_STDOUT = 16 * 1024 * 1024;
const DEFAULT_MAX_STDERR = 64 * 1024;

/** Throws CancelledError when the signal has fired; call between chunks of work. */
export function throwIfAborted(signal: AbortSignal | undefined, what = 'task'): void {
  if (signal?.aborted) throw new CancelledError(`${what} cancelled`, { cause: signal.reason });
}

/**
 * Runs `command args…` to completion. Never throws for a non-zero exit (the caller decides what it means);
 * throws DependencyUnavailableError when the binary cannot be started and CancelledError on abort.
 */
export function runProcess(command: string, args: readonly string[], options: RunProcessOptions = {}): Promise<ProcessOutput> {
  const { signal } = options;
  throwIfAborted(signal, command);
  const maxStdout = options.maxStdoutBytes ?? DEFAULT_MAX_STDOUT;
  const maxStderr = options.maxStderrBytes ?? DEFAULT_MAX_STDERR;

  return new Promise<ProcessOutput>((resolve, reject) => {
    const child = spawn(command, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    const stdout: Buffer[] = [];
    let stdoutBytes = 0;
    let stdoutTruncated = false;
    let stderr = Buffer.alloc(0);
    let settled = false;

    const onAbort = (): void => {
      child.kill('SIGKILL');
    };
    signal?.addEventListener('abort', onAbort, { once: true });

    const finish = (fn: () => void): void => {
      if (settled) return;
      settled = true;
      signal?.removeEventListener('abort', onAbort);
      fn();
    };

    child.stdout.on('data', (chunk: Buffer) => {
      if (stdoutBytes + chunk.length > maxStdout) {
        stdoutTruncated = true;
        const room = maxStdout - stdoutBytes;
        if (room > 0) stdout.push(chunk.subarray(0, room));
        stdoutBytes = maxStdout;
        return;
      }
      stdout.push(chunk);
      stdoutBytes += chunk.length;
    });
    child.stderr.on('data', (chunk: Buffer) => {
      stderr = Buffer.concat([stderr, chunk]);
      if (stderr.length > maxStderr) stderr = stderr.subarray(stderr.length - maxStderr);
    });
    child.once('error', (err: NodeJS.ErrnoException) => {
      finish(() => {
        if (err.code === 'ENOENT') {
          reject(new DependencyUnavailableError(`${command} is not installed or not on PATH`, { cause: err }));
        } else {
          reject(new DependencyUnavailableError(`${command} could not be started: ${err.message}`, { cause: err }));
        }
      });
    });
    child.once('close', (code) => {
      finish(() => {
        if (signal?.aborted) {
          reject(new CancelledError(`${command} killed: task cancelled`, { cause: signal.reason }));
          return;
        }
        resolve({ code, stdout: Buffer.concat(stdout).toString('utf8'), stderr: stderr.toString('utf8'), stdoutTruncated });
      });
    });
  });
}

/** The last meaningful lines of a tool's stderr, for an error message a human reads. */
export function stderrTail(stderr: string, lines = 3): string {
  return stderr
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l.length > 0)
    .slice(-lines)
    .join('; ');
}
