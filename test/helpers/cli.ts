/**
 * Runs the `mobilenet` CLI from the TypeScript sources in a child process
 * (`node --import tsx test/helpers/cli.ts <command> ...`), for tests that
 * need a real process: servers, workers, signals.
 */
import { main } from '../../lib/cli/index.js';

const code = await main(process.argv.slice(2), { stdout: process.stdout, stderr: process.stderr, env: process.env, cwd: process.cwd() });
process.exitCode = code;
