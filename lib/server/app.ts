/**
 * The HTTP classification service (Fastify): `POST /v1/classify`,
 * `GET /v1/models`, `GET /healthz`, `GET /readyz`, `GET /metrics`, `GET /`.
 *
 * Stateless: every request carries its image and gets its answer, so any
 * number of replicas can sit behind a load balancer.
 *
 * Status codes: 415 wrong content type (or SVG refused), 413 body, file or
 * pixel count over the limit, 400 not an image / corrupt / bad parameter,
 * 503 + Retry-After when the bounded queue is full, the event loop is
 * overloaded (@fastify/under-pressure, on the classify route only: the
 * probes and /metrics keep answering) or the server is shutting down.
 * Errors are JSON: `{ statusCode, error, code, message }`.
 */
import http from 'node:http';
import Fastify, { type FastifyError, type FastifyInstance, type FastifyReply, type FastifyRequest } from 'fastify';
import multipart from '@fastify/multipart';
import underPressure from '@fastify/under-pressure';
import { Gauge } from 'prom-client';
import type { Prediction } from '../classify.js';
import { DEFAULT_SERVER_MAX_BODY } from '../limits.js';
import type { Model } from '../model.js';
import * as v from '../validate.js';
import { ImageClassifier, type ClassifierOptions } from './classifier.js';
import { QueueFullError, ServiceError } from './errors.js';
import { createMetrics, type ServiceMetrics } from './metrics.js';
import { DEMO_PAGE } from './page.js';

export interface ServerOptions extends ClassifierOptions {
  /** Largest request body / uploaded file, bytes (default 10 MiB, lib/limits.ts). */
  maxBody?: number;
  /** Most `image` parts in one multipart request (default 16). */
  maxFiles?: number;
  /** Event-loop delay (ms) above which requests get 503 (default 1000; 0 turns the check off). */
  maxEventLoopDelay?: number;
  /** Seconds clients are told to wait in Retry-After (default 1). */
  retryAfter?: number;
}

export interface Service {
  app: FastifyInstance;
  classifier: ImageClassifier;
  metrics: ServiceMetrics;
  /** Compiles the runtimes, then /readyz answers 200. */
  warmUp(): Promise<void>;
  /** Stops accepting, answers every accepted request, frees nothing it does not own. */
  close(): Promise<void>;
}

function errorBody(statusCode: number, code: string, message: string): Record<string, unknown> {
  return { statusCode, error: http.STATUS_CODES[statusCode] ?? 'Error', code, message };
}

/** The `top` query parameter: a positive integer. */
function parseTop(value: unknown): number | undefined {
  if (value === undefined) return undefined;
  const n = typeof value === 'string' && /^\d+$/.test(value) ? Number(value) : NaN;
  if (!Number.isInteger(n) || n <= 0) throw new ServiceError(v.message('positive integer', 'top', value), 400, 'BAD_PARAMETER');
  return n;
}

export async function createServer(model: Model, options: ServerOptions = {}): Promise<Service> {
  const maxBody = options.maxBody === undefined ? DEFAULT_SERVER_MAX_BODY : v.positiveInteger(options.maxBody, 'maxBody');
  const maxFiles = options.maxFiles === undefined ? 16 : v.positiveInteger(options.maxFiles, 'maxFiles');
  const retryAfter = options.retryAfter === undefined ? 1 : v.positiveInteger(options.retryAfter, 'retryAfter');
  // The gauges read the classifier when scraped (after it exists).
  const m = createMetrics({ queueDepth: () => classifier.batcher.depth, inFlight: () => classifier.inFlight });
  const classifier = new ImageClassifier(model, options, {
    onBatch: (s) => {
      m.batchSize.observe(s.size);
      m.inference.observe(s.seconds);
    },
  });
  let state: 'starting' | 'ready' | 'closing' = 'starting';
  // Requests admitted to /v1/classify and not yet answered: bounded by maxQueue
  // before their bodies are read, so buffered bodies are bounded too.
  let requestsInFlight = 0;
  new Gauge({
    name: 'mobilenet_http_requests_in_flight',
    help: 'Classification requests admitted and not yet answered',
    registers: [m.registry],
    collect() {
      this.set(requestsInFlight);
    },
  });

  const app = Fastify({ logger: false, bodyLimit: maxBody, return503OnClosing: true });

  const maxEventLoopDelay = options.maxEventLoopDelay === undefined ? 1000 : v.nonNegativeInteger(options.maxEventLoopDelay, 'maxEventLoopDelay');

  app.setErrorHandler((err: FastifyError | ServiceError | Error, req: FastifyRequest, reply: FastifyReply) => {
    let status = (err as { statusCode?: number }).statusCode;
    let code = (err as { code?: string }).code ?? 'INTERNAL';
    let message = err.message;
    if (status === undefined && (err instanceof TypeError || err instanceof RangeError)) {
      status = 400;
      code = 'BAD_PARAMETER';
    }
    status ??= 500;
    if (code === 'FST_ERR_CTP_INVALID_MEDIA_TYPE') {
      const type = req.headers['content-type'];
      message = `${type === undefined ? 'No content type' : `Content type '${type}'`} is not accepted: send an image type (image/jpeg, image/png, image/webp, …) or multipart/form-data with 'image' parts`;
    } else if (code === 'FST_ERR_CTP_BODY_TOO_LARGE') {
      message = `The request body is over the limit of ${maxBody} bytes`;
    } else if (code === 'FST_REQ_FILE_TOO_LARGE') {
      message = `An uploaded file is over the limit of ${maxBody} bytes`;
    } else if (code === 'FST_FILES_LIMIT') {
      message = `More than ${maxFiles} files in one request`;
    }
    if (status === 503) void reply.header('retry-after', String(retryAfter));
    void reply.code(status).send(errorBody(status, code, message));
  });

  app.addHook('onResponse', (req, reply, done) => {
    const route = req.routeOptions.url ?? 'unmatched';
    m.requests.inc({ method: req.method, route, status: String(reply.statusCode) });
    m.latency.observe({ route }, reply.elapsedTime / 1000);
    done();
  });

  app.get('/', (_req, reply) => {
    void reply.type('text/html; charset=utf-8').send(DEMO_PAGE);
  });
  app.get('/healthz', async () => ({ status: 'ok' }));
  app.get('/readyz', async (_req, reply) => {
    if (state !== 'ready') void reply.code(503).header('retry-after', String(retryAfter));
    return { status: state };
  });
  app.get('/metrics', async (_req, reply) => {
    void reply.type(m.registry.contentType);
    return m.registry.metrics();
  });
  app.get('/v1/models', async () => ({
    models: [
      {
        name: model.name,
        architecture: model.architecture,
        inputShape: model.inputShape,
        outputShape: model.outputShape,
        classes: model.classes,
        preprocessing: model.preprocessing,
        parameters: model.analysis.totalParams,
        backend: model.backend,
        threads: model.threads,
        maxBatch: classifier.batcher.maxBatch,
      },
    ],
  }));

  // The classify route in its own scope: only image/* and multipart bodies are parsed.
  await app.register(async (scope) => {
    scope.removeAllContentTypeParsers();
    scope.addContentTypeParser(/^image\/[\w.+-]+$/i, { parseAs: 'buffer', bodyLimit: maxBody }, (_req, body, done) => done(null, body));
    // Load shedding on the work route only: /healthz, /readyz and /metrics keep answering while the
    // event loop lags (a liveness probe answering 503 would get a busy but healthy pod restarted).
    // under-pressure is a fastify-plugin, so its hook lands in this scope and no further up.
    await scope.register(underPressure, { maxEventLoopDelay, retryAfter, exposeStatusRoute: false });
    await scope.register(multipart, {
      limits: { fileSize: maxBody, files: maxFiles, fields: 16, parts: maxFiles + 16 },
    });

    scope.addHook('onRequest', (req, reply, done) => {
      if (requestsInFlight >= classifier.maxQueue || classifier.full) {
        m.images.inc({ outcome: 'QUEUE_FULL' });
        const e = new QueueFullError(classifier.maxQueue);
        void reply.code(503).header('retry-after', String(retryAfter)).send(errorBody(503, e.code, e.message));
        return;
      }
      requestsInFlight++;
      reply.raw.once('close', () => requestsInFlight--);
      done();
    });

    const classifyOne = async (image: Uint8Array, top: number | undefined, contentType: string | undefined): Promise<Prediction[]> => {
      try {
        const predictions = await classifier.classify(image, { topK: top, contentType });
        m.images.inc({ outcome: 'ok' });
        return predictions;
      } catch (e) {
        m.images.inc({ outcome: e instanceof ServiceError ? e.code : 'INTERNAL' });
        throw e;
      }
    };

    scope.post('/v1/classify', async (req, reply) => {
      const top = parseTop((req.query as Record<string, unknown>).top);
      if (req.isMultipart()) {
        const parts: Array<{ name: string; bytes: Buffer; type: string }> = [];
        for await (const part of req.parts()) {
          if (part.type !== 'file') continue;
          if (part.fieldname !== 'image') {
            part.file.resume();
            throw new ServiceError(`Unexpected file field '${part.fieldname}': upload images as 'image' parts`, 400, 'BAD_FIELD');
          }
          if (!/^image\/|^application\/octet-stream$/i.test(part.mimetype)) {
            part.file.resume();
            throw new ServiceError(`Part '${part.filename}' has content type ${part.mimetype}, not an image type`, 415, 'UNSUPPORTED_MEDIA_TYPE');
          }
          parts.push({ name: part.filename, bytes: await part.toBuffer(), type: part.mimetype });
        }
        if (parts.length === 0) throw new ServiceError("The multipart body has no 'image' part", 400, 'NO_IMAGE');
        const settled = await Promise.allSettled(parts.map((p) => classifyOne(p.bytes, top, p.type)));
        const failed = settled.findIndex((s) => s.status === 'rejected');
        if (failed >= 0) {
          const e = (settled[failed] as PromiseRejectedResult).reason as Error;
          if (e instanceof ServiceError) {
            throw new ServiceError(`Image ${failed + 1} (${parts[failed]!.name}): ${e.message}`, e.statusCode, e.code, { cause: e });
          }
          throw e;
        }
        return {
          model: model.name,
          images: settled.map((s, i) => ({ name: parts[i]!.name, predictions: (s as PromiseFulfilledResult<Prediction[]>).value })),
        };
      }
      const body = req.body;
      if (!Buffer.isBuffer(body) || body.length === 0) {
        void reply.code(400);
        return errorBody(400, 'EMPTY_IMAGE', 'The request body is empty: send the image bytes with an image content type');
      }
      const predictions = await classifyOne(body, top, req.headers['content-type']);
      return { model: model.name, predictions };
    });
  });

  return {
    app,
    classifier,
    metrics: m,
    async warmUp() {
      await classifier.warmUp();
      if (state === 'starting') state = 'ready';
    },
    async close() {
      state = 'closing';
      await app.close();
      await classifier.close();
    },
  };
}
