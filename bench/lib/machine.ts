/** What the benchmark ran on: CPU, cores, ISA flags, Node.js, XNNPACK build. */
import fs from 'node:fs';
import os from 'node:os';

export interface MachineInfo {
  cpu: string;
  cores: number;
  flags: string[];
  node: string;
  xnnpack: string;
  os: string;
  memory_gb: number;
  host: string;
  /** 1/5/15-minute load averages when the run started (other processes compete for the cores). */
  load_avg: number[];
}

/** ISA extensions that matter for XNNPACK's f32 kernels. */
const INTERESTING = ['sse4_2', 'avx', 'avx2', 'fma', 'f16c', 'avx512f', 'avx512bw', 'avx512vl', 'avx512_vnni', 'avx512_bf16', 'avx512_fp16', 'amx_tile', 'neon', 'asimd', 'asimddp', 'fphp', 'asimdhp', 'sve', 'sve2'];

export function cpuFlags(): string[] {
  try {
    const text = fs.readFileSync('/proc/cpuinfo', 'utf8');
    const line = text.split('\n').find((l) => /^(flags|Features)\s*:/.test(l));
    if (!line) return [];
    const all = new Set(line.split(':')[1]!.trim().split(/\s+/));
    return INTERESTING.filter((f) => all.has(f));
  } catch {
    return [];
  }
}

export async function xnnpackDescription(): Promise<string> {
  try {
    const { xnnpackInfo } = (await import('../../lib/binding.js')) as {
      xnnpackInfo: () => { source: string; commit?: string; version?: string; cpu?: { name?: string; cores?: number; processors?: number } };
    };
    const info = xnnpackInfo();
    const cpu = info.cpu ? `; cpuinfo: ${info.cpu.name ?? '?'}, ${info.cpu.cores ?? '?'} physical core(s), ${info.cpu.processors ?? '?'} logical processor(s)` : '';
    return [info.source, info.commit, info.version && `(${info.version})`].filter(Boolean).join(' ') + cpu;
  } catch (e) {
    return `unavailable: ${(e as Error).message.split('\n')[0]}`;
  }
}

export async function machineInfo(): Promise<MachineInfo> {
  const cpus = os.cpus();
  return {
    cpu: cpus[0]?.model.trim() ?? 'unknown',
    cores: typeof os.availableParallelism === 'function' ? os.availableParallelism() : cpus.length,
    flags: cpuFlags(),
    node: process.version,
    xnnpack: await xnnpackDescription(),
    os: `${os.type()} ${os.release()} ${os.arch()}`,
    memory_gb: Math.round(os.totalmem() / 2 ** 30),
    host: os.hostname(),
    load_avg: os.loadavg().map((x) => Math.round(x * 100) / 100),
  };
}
