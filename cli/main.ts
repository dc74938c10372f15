/** The Dalston CLI behind `./dalston`: `up`, `test [filter…]`, `setup`, `keys`. */
import { ConfigError, DalstonError } from '../core/errors.js';
import { loadConfig } from '../core/config.js';
import { setup } from '../infra/setup.js';
import { consoleLogger } from './console-logger.js';
import { test } from './test-command.js';
import { up } from './up.js';
import { keys } from './keys.js';

const USAGE = `usage: ./dalston <command>
  up               set up and run the whole system locally (Ctrl-C stops it)
  test [filter…]   set up and run lint and the full test suite (optionally only test files matching a filter)
  setup            install what is missing (apt packages, Kafka, models) and exit
  keys …           create, list and revoke API keys (./dalston keys for its usage)
`;

async function main(argv: readonly string[]): Promise<number> {
  const [command, ...rest] = argv;
  const config = loadConfig();
  const log = consoleLogger(process.env['DALSTON_VERBOSE'] === '1');
  switch (command) {
    case 'up':
      return up(config, log);
    case 'test':
      return test(config, log, rest);
    case 'keys':
      return keys(config, log, rest);
    case 'setup':
      await setup(config.homeDir, log);
      return 0;
    default:
      process.stderr.write(USAGE);
      return command === undefined || command === 'help' || command === '--help' ? 0 : 2;
  }
}

main(process.argv.slice(2))
  .then((code) => process.exit(code))
  .catch((err: unknown) => {
    // One clear line, not a stack trace: set-up failures are for an operator to act on.
    const msg = err instanceof DalstonError ? err.message : err instanceof Error ? err.message : String(err);
    process.stderr.write(`dalston: ${err instanceof ConfigError ? 'configuration error: ' : ''}${msg}\n`);
    if (process.env['DALSTON_VERBOSE'] === '1' && err instanceof Error) process.stderr.write(`${err.stack ?? ''}\n`);
    process.exit(1);
  });
