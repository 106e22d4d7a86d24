/** The parser's errors: a located parse error (Docker's words), and an instruction's error before it is located. */
import { BadParameterError, SystemError } from "../lib/errors.js";

/**
 * A Dockerfile that cannot be parsed. `line`/`endLine` locate it (0 when the
 * error is about the whole file); `detail` is the message without location.
 */
export class DockerfileParseError extends BadParameterError {
  readonly line: number;
  readonly endLine: number;
  readonly detail: string;
  constructor(detail: string, line = 0, endLine = line) {
    super(line > 0 ? `dockerfile parse error on line ${line}: ${detail}` : detail);
    this.line = line;
    this.endLine = endLine;
    this.detail = detail;
  }
}

/** An error in one instruction; located by the caller. */
export class NodeError extends Error {}

/** A build whose client went away, or whose other stage failed (Docker's words for it). */
export class BuildCancelledError extends SystemError {
  constructor() { super("context canceled"); }
}
