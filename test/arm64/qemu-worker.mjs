// Entry of the emulated vitest worker (test/arm64/qemu-pool.ts): loads vitest's
// forks worker (slow under emulation), then tells the pool it is ready, so that
// vitest's 60 s start timeout only counts from there.
import { pathToFileURL } from 'node:url';

await import(pathToFileURL(process.argv[2]).href);
process.send({ type: 'qemu-arm64-ready' });
