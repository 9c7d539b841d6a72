/**
 * A vitest pool whose test workers are an arm64 Node.js under qemu-aarch64
 * user-mode emulation (used by vitest.arm64.config.ts, `npm run test:arm64`).
 * vitest itself (vite, transforms, reporting) runs natively; each test file
 * runs in the emulated worker, loading the arm64 addon. It is vitest's own
 * forks worker (`ForksPoolWorker`, an experimental API of vitest 4) with the
 * child started by `qemu-aarch64 -L <sysroot> <arm64 node>` instead of this Node.
 */
import { type ChildProcess, fork } from 'node:child_process';
import type { Writable } from 'node:stream';
import { fileURLToPath } from 'node:url';
import { ForksPoolWorker, type PoolOptions } from 'vitest/node';

export interface QemuCommand {
  /** qemu-aarch64-static or qemu-aarch64. */
  qemu: string;
  /** Where the arm64 loader and libraries are (Debian's cross toolchain: /usr/aarch64-linux-gnu). */
  sysroot: string;
  /** The arm64 node binary. */
  node: string;
  /** qemu -cpu model (default: qemu's "max"). */
  cpu?: string;
}

class QemuForksPoolWorker extends ForksPoolWorker {
  override readonly name = 'qemu-arm64';

  constructor(
    options: PoolOptions,
    private readonly cmd: QemuCommand,
  ) {
    super(options);
  }

  override async start(): Promise<void> {
    // ForksPoolWorker.start() with the executable changed (its fields are private in the typings only),
    // resolved once the emulated Node.js runs test/arm64/qemu-worker.mjs (which then loads vitest's worker).
    const self = this as unknown as { _fork?: ChildProcess; stdout: Writable; stderr: Writable };
    if (self._fork !== undefined) return;
    const qemuArgs = ['-L', this.cmd.sysroot, ...(this.cmd.cpu ? ['-cpu', this.cmd.cpu] : []), this.cmd.node];
    const started = Date.now();
    self._fork = fork(fileURLToPath(new URL('qemu-worker.mjs', import.meta.url)), [this.entrypoint], {
      execPath: this.cmd.qemu,
      execArgv: [...qemuArgs, ...this.execArgv],
      env: this.env,
      stdio: 'pipe',
      serialization: 'advanced',
    });
    const child = self._fork;
    if (child.stdout) {
      self.stdout.setMaxListeners(1 + self.stdout.getMaxListeners());
      child.stdout.pipe(self.stdout);
    }
    if (child.stderr) {
      self.stderr.setMaxListeners(1 + self.stderr.getMaxListeners());
      child.stderr.pipe(self.stderr);
    }
    await new Promise<void>((resolve, reject) => {
      const onMessage = (m: unknown): void => {
        if ((m as { type?: string } | null)?.type !== 'qemu-arm64-alive') return;
        child.off('message', onMessage);
        child.off('exit', onExit);
        process.stderr.write(`test:arm64: emulated arm64 Node.js up after ${((Date.now() - started) / 1000).toFixed(1)} s (vitest's worker loading)\n`);
        resolve();
      };
      const onExit = (code: number | null): void => reject(new Error(`the emulated arm64 worker exited (status ${code}) at startup`));
      child.on('message', onMessage);
      child.on('exit', onExit);
    });
  }
}

export function qemuPool(cmd: QemuCommand): { name: string; createPoolWorker: (options: PoolOptions) => ForksPoolWorker } {
  return { name: 'qemu-arm64', createPoolWorker: (options) => new QemuForksPoolWorker(options, cmd) };
}
