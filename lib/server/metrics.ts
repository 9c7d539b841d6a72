/**
 * Prometheus metrics of the classification service (prom-client), on a
 * registry of its own so that two servers in one process do not collide.
 */
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';

export interface ServiceMetrics {
  registry: Registry;
  requests: Counter<'method' | 'route' | 'status'>;
  latency: Histogram<'route'>;
  images: Counter<'outcome'>;
  batchSize: Histogram;
  inference: Histogram;
}

export function createMetrics(gauges: { queueDepth: () => number; inFlight: () => number }): ServiceMetrics {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry });
  const requests = new Counter({
    name: 'mobilenet_http_requests_total',
    help: 'HTTP requests answered, by method, route and status code',
    labelNames: ['method', 'route', 'status'] as const,
    registers: [registry],
  });
  const latency = new Histogram({
    name: 'mobilenet_http_request_duration_seconds',
    help: 'Time from request to response, by route',
    labelNames: ['route'] as const,
    buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
    registers: [registry],
  });
  const images = new Counter({
    name: 'mobilenet_images_total',
    help: 'Images received, by outcome (ok, or the error code)',
    labelNames: ['outcome'] as const,
    registers: [registry],
  });
  const batchSize = new Histogram({
    name: 'mobilenet_batch_size',
    help: 'Images per inference call (micro-batching)',
    buckets: [1, 2, 3, 4, 6, 8, 12, 16, 24, 32, 64],
    registers: [registry],
  });
  const inference = new Histogram({
    name: 'mobilenet_inference_duration_seconds',
    help: 'Time of one inference call (a whole batch)',
    buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1],
    registers: [registry],
  });
  new Gauge({
    name: 'mobilenet_queue_depth',
    help: 'Images decoded and waiting for inference',
    registers: [registry],
    collect() {
      this.set(gauges.queueDepth());
    },
  });
  new Gauge({
    name: 'mobilenet_images_in_flight',
    help: 'Images admitted and not yet answered (decoding, waiting or running); the queue bound applies to it',
    registers: [registry],
    collect() {
      this.set(gauges.inFlight());
    },
  });
  return { registry, requests, latency, images, batchSize, inference };
}
