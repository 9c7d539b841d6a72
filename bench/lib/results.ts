/**
 * The shape of a benchmark run's results (bench/run.ts produces them,
 * bench/report.ts renders them): its own module so neither imports the other.
 */
import type { EngineName } from '../engines.js';
import type { ClassifyE2EResult } from './classify-e2e.js';
import type { MachineInfo } from './machine.js';

export interface ResultRow {
  engine: EngineName;
  model: string;
  threads: number;
  batch: number;
  median_ms: number | null;
  p90_ms: number | null;
  p99_ms: number | null;
  runs: number;
  images_per_s: number | null;
  /** Fastest run: the least noise-sensitive estimate on a shared machine. */
  min_ms?: number;
  load_ms?: number;
  /** mobilenet-xnnpack: longest gap between ticks of a 1 ms interval timer during loadModel (bench/load.ts). */
  load_stall_ms?: number;
  /** mobilenet-xnnpack: RSS after loadModel and a GC minus RSS after importing the library (bench/load.ts)... */
  rss_growth_mb?: number;
  /** ...against 2 × float32 weight bytes + 10 MB. */
  rss_growth_target_mb?: number;
  peak_rss_mb?: number;
  max_abs_diff?: number;
  notes?: string;
  error?: string;
}

export interface ConcurrencyRow {
  engine: EngineName;
  model: string;
  threads: number;
  concurrency: number;
  requests: number;
  median_ms: number;
  p90_ms: number;
  p99_ms: number;
  images_per_s: number;
}

export interface TargetRow {
  model: string;
  threads: number;
  target: string;
  goal: string;
  value: number | null;
  met: boolean | null;
  detail: string;
}

export interface BenchResults {
  date: string;
  mode: 'quick' | 'full';
  machine: MachineInfo;
  settings: Record<string, unknown>;
  models: Array<{ id: string; label: string; params: number; macs: number; input: number[] }>;
  results: ResultRow[];
  concurrency: ConcurrencyRow[];
  targets: TargetRow[];
  /** `mobilenet classify` end to end (bench/lib/classify-e2e.ts); absent with --no-e2e. */
  classify_e2e?: ClassifyE2EResult;
  duration_s: number;
  /** Load averages when the run ended. */
  load_avg_end: number[];
}
