/**
 * Preloaded into the gateway by the idle-sockets benchmark (`--expose-gc --import`): on SIGUSR2 it runs a full
 * garbage collection and prints the process's memory use as one JSON line on stderr, so the benchmark measures
 * what live connections cost rather than garbage V8 has not collected yet.
 */
process.on('SIGUSR2', () => {
  const gc = (globalThis as { gc?: () => void }).gc;
  gc?.();
  gc?.();
  const m = process.memoryUsage();
  process.stderr.write(`GC_PROBE ${JSON.stringify({ rss: m.rss, heapUsed: m.heapUsed, heapTotal: m.heapTotal, external: m.external, arrayBuffers: m.arrayBuffers })}\n`);
});
