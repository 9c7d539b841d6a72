/**
 * Errors of the classification service: each carries the HTTP status it is
 * answered with and a stable `code` (the JSON error body's `code`).
 */
import { MobileNetError } from '../errors.js';

export class ServiceError extends MobileNetError {
  constructor(
    message: string,
    readonly statusCode: number,
    readonly code: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}

/** The bounded queue is full: answered 503 with Retry-After. */
export class QueueFullError extends ServiceError {
  constructor(limit: number) {
    super(`The server is busy: ${limit} images are already queued; retry later`, 503, 'QUEUE_FULL');
  }
}

/** The service is shutting down (503). */
export class ClosingError extends ServiceError {
  constructor() {
    super('The server is shutting down', 503, 'CLOSING');
  }
}
