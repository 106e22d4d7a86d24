/**
 * Typed errors. Each carries the HTTP status the Docker Engine API answers
 * with, so the API layer maps them without guessing.
 */
export class BerthError extends Error {
  readonly status: number;
  constructor(message: string, status = 500) {
    super(message);
    this.status = status;
    this.name = new.target.name;
  }
}
/** 400: the request is malformed or a parameter is invalid. */
export class BadParameterError extends BerthError {
  constructor(message: string) { super(message, 400); }
}
/** 404: no such container, image, exec instance... */
export class NotFoundError extends BerthError {
  constructor(message: string) { super(message, 404); }
}
/** 409: name in use, container running, image in use... */
export class ConflictError extends BerthError {
  constructor(message: string) { super(message, 409); }
}
/** 304: the container is already started/stopped. */
export class NotModifiedError extends BerthError {
  constructor(message = "") { super(message, 304); }
}
/** 500 with a message from a lower layer (runtime, filesystem). */
export class SystemError extends BerthError {
  constructor(message: string) { super(message, 500); }
}

export function errorMessage(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}
