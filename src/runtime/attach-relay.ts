/**
 * The unix stream socket attach relays connect back to. bin/berth-attach, started by the mount helper
 * (no fork of berthd, whose spawn holds the event loop for milliseconds), connects to conmon's attach
 * socket, then to this one, and sends "<token>\n": berthd hands the connection to whoever expects that
 * token. The connection is then the relay's stdin and stdout: conmon's output (stdcopy frames, or raw
 * with a TTY) comes in, what berthd writes goes to the container's stdin, and a half-close (end())
 * closes that stdin.
 */
import { createServer, type Server, type Socket } from "node:net";
import { randomBytes } from "node:crypto";
import { promises as fsp } from "node:fs";

/** How long a connection may take to present its token. */
const TOKEN_MS = 10_000;

export class AttachRelay {
  private listening?: Promise<Server>;
  private readonly waiting = new Map<string, (s: Socket) => void>();

  constructor(readonly path: string) {}

  /** Listens (once); rejects when the socket cannot be made, and a later call tries again. */
  ready(): Promise<Server> {
    this.listening ??= (async () => {
      await fsp.rm(this.path, { force: true });
      const server = createServer({ allowHalfOpen: true }, (s) => this.accept(s));
      await new Promise<void>((res, rej) => {
        server.once("error", rej);
        server.listen(this.path, () => { server.off("error", rej); res(); });
      });
      server.on("error", () => { /* a failed accept: that relay's attach fails by its own deadline */ });
      await fsp.chmod(this.path, 0o600);
      server.unref();
      return server;
    })();
    this.listening.catch(() => { this.listening = undefined; });
    return this.listening;
  }

  /** A fresh token and the connection that will present it; cancel() forgets the token. */
  expect(): { token: string; connection: Promise<Socket>; cancel(): void } {
    const token = randomBytes(16).toString("hex");
    const connection = new Promise<Socket>((resolve) => this.waiting.set(token, resolve));
    return { token, connection, cancel: () => { this.waiting.delete(token); } };
  }

  async close(): Promise<void> {
    const server = await this.listening?.catch(() => undefined);
    this.listening = undefined;
    if (!server) return;
    await new Promise<void>((r) => server.close(() => r()));
    await fsp.rm(this.path, { force: true }).catch(() => {});
  }

  private accept(s: Socket): void {
    s.on("error", () => { /* the relay went away: its end or close says so */ });
    const timer = setTimeout(() => s.destroy(), TOKEN_MS);
    timer.unref();
    let head: Buffer = Buffer.alloc(0);
    // Read in paused mode ('readable'), so that once the listener goes the stream is as new: the
    // owner's on("data") starts it flowing.
    const onReadable = (): void => {
      let chunk: Buffer | null;
      while ((chunk = s.read() as Buffer | null) !== null) {
        head = head.length ? Buffer.concat([head, chunk]) : chunk;
        const nl = head.indexOf(10);
        if (nl < 0) { if (head.length > 64) { clearTimeout(timer); s.destroy(); } continue; }
        s.off("readable", onReadable);
        clearTimeout(timer);
        const rest = head.subarray(nl + 1);
        if (rest.length) s.unshift(rest);
        const token = head.subarray(0, nl).toString("latin1");
        const give = this.waiting.get(token);
        if (!give) { s.destroy(); return; }
        this.waiting.delete(token);
        give(s);
        return;
      }
    };
    s.on("readable", onReadable);
  }
}
