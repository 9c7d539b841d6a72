// Entry of the emulated vitest worker (test/arm64/qemu-pool.ts).
//
// Loading vitest's forks worker takes one to two minutes under emulation on a
// busy machine, longer than vitest gives a worker to answer its "start"
// message (60 s, 90 s in all). So this entry answers "start" itself at once,
// buffers every message while vitest's worker loads, then replays them to it
// (dropping its own, now redundant, "started" answer). Test timeouts still apply.
import { pathToFileURL } from 'node:url';

const early = [];
let replaying = false;
const buffer = (m) => {
  if (!replaying) early.push(m);
  if (m?.type === 'start' && m.__vitest_worker_request__) process.send({ type: 'started', __vitest_worker_response__: true });
};
process.on('message', buffer);

const send = process.send.bind(process);
let dropStarted = true;
process.send = (message, ...rest) => {
  if (dropStarted && message?.type === 'started' && message.__vitest_worker_response__) {
    dropStarted = false;
    if (message.error) {
      process.stderr.write(`test:arm64: the emulated vitest worker failed to set up: ${JSON.stringify(message.error)}\n`);
      process.exit(1);
    }
    return true;
  }
  return send(message, ...rest);
};
send({ type: 'qemu-arm64-alive' });

await import(pathToFileURL(process.argv[2]).href);
replaying = true;
process.off('message', buffer);
for (const m of early) process.emit('message', m);
