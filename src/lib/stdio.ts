/** Client-side stdio: demultiplexing Docker's stdcopy frames, raw terminals, detach keys, resizes. */
import type { Socket } from "node:net";

/** True once a readable has ended or was torn down: its 'end'/'close' events are already past. */
function over(src: NodeJS.ReadableStream): boolean {
  const r = src as NodeJS.ReadableStream & { readableEnded?: boolean; destroyed?: boolean; closed?: boolean };
  return !!(r.readableEnded || r.destroyed || r.closed);
}

/**
 * Copies src to out with backpressure (pauses src while out is full) and resolves at src's end, also when
 * src ended before this was called (a container that exits at once without output: a paused socket still
 * emits 'end' and 'close' on EOF).
 */
function copyTo(src: NodeJS.ReadableStream, onData: (d: Buffer, pause: (w: NodeJS.WritableStream) => void) => void): Promise<void> {
  return new Promise((resolve, reject) => {
    if (over(src)) { resolve(); return; }
    const waiting = new Set<NodeJS.WritableStream>();
    const pause = (w: NodeJS.WritableStream) => {
      if (waiting.has(w)) return;
      waiting.add(w);
      src.pause();
      w.once("drain", () => { waiting.delete(w); if (!waiting.size) src.resume(); });
    };
    src.on("data", (d: Buffer) => onData(d, pause));
    src.on("end", resolve);
    src.on("close", resolve);
    src.on("error", reject);
    src.resume();
  });
}

/** Splits a multiplexed stream into stdout and stderr writes (with backpressure); resolves at its end. */
export function demux(src: NodeJS.ReadableStream, out: NodeJS.WritableStream, err: NodeJS.WritableStream): Promise<void> {
  let buf: Buffer = Buffer.alloc(0);
  return copyTo(src, (d, pause) => {
    buf = buf.length ? Buffer.concat([buf, d]) : d;
    while (buf.length >= 8) {
      const len = buf.readUInt32BE(4);
      if (buf.length < 8 + len) break;
      const kind = buf[0];
      const payload = buf.subarray(8, 8 + len);
      const to = kind === 2 || kind === 3 ? err : out;
      if (!to.write(payload)) pause(to);
      buf = buf.subarray(8 + len);
    }
  });
}

/** Copies a raw (tty) stream to out with backpressure; resolves at its end. */
export function copyRaw(src: NodeJS.ReadableStream, out: NodeJS.WritableStream): Promise<void> {
  return copyTo(src, (d, pause) => { if (!out.write(d)) pause(out); });
}

/** Parses docker's --detach-keys ("ctrl-p,ctrl-q") into bytes. */
export function detachKeys(spec = "ctrl-p,ctrl-q"): number[] {
  return spec.split(",").filter(Boolean).map((k) => {
    const m = /^ctrl-(.)$/.exec(k.trim());
    if (m) { const c = m[1]; return c === "@" ? 0 : c === "[" ? 27 : c === "\\" ? 28 : c === "]" ? 29 : c === "^" ? 30 : c === "_" ? 31 : c.toLowerCase().charCodeAt(0) - 96; }
    return k.charCodeAt(0);
  });
}

export interface StreamOpts { tty: boolean; stdin: boolean; detachKeys?: string; resize?: (h: number, w: number) => Promise<unknown> }

/**
 * Relays a hijacked connection: output to stdout/stderr (demultiplexed unless
 * tty), stdin to the socket (half-closed at EOF). Resolves when the output
 * ends; "detached" when the user typed the detach keys.
 */
export function relayStreams(sock: Socket, o: StreamOpts): Promise<"done" | "detached"> {
  // process.stdin is created on first use (a handle, a read): only touch it when it is wanted.
  const stdin = o.stdin || o.tty ? process.stdin : undefined;
  let restore = () => {};
  if (o.tty && stdin?.isTTY) {
    stdin.setRawMode(true);
    restore = () => { try { stdin.setRawMode(false); } catch { /* closed */ } };
  }
  return new Promise((resolve) => {
    let finished = false;
    const finish = (how: "done" | "detached") => {
      if (finished) return;
      finished = true;
      restore();
      stdin?.pause();
      if (onResize) process.stdout.off("resize", onResize);
      resolve(how);
    };
    let onResize: (() => void) | undefined;
    if (o.tty && o.resize && process.stdout.isTTY) {
      onResize = () => { void o.resize!(process.stdout.rows, process.stdout.columns).catch(() => {}); };
      process.stdout.on("resize", onResize);
    }
    if (o.stdin && stdin) {
      const keys = o.tty ? detachKeys(o.detachKeys) : [];
      let matched = 0;
      stdin.on("data", (d: Buffer) => {
        if (keys.length) {
          for (const b of d) {
            matched = b === keys[matched] ? matched + 1 : b === keys[0] ? 1 : 0;
            if (matched === keys.length) { sock.destroy(); finish("detached"); return; }
          }
        }
        sock.write(d);
      });
      stdin.on("end", () => { if (!o.tty) sock.end(); });
      stdin.resume();
    }
    const done = o.tty ? copyRaw(sock, process.stdout) : demux(sock, process.stdout, process.stderr);
    sock.on("error", () => finish("done"));
    void done.catch(() => {}).then(() => finish("done"));
  });
}

/** Sends the current terminal size, as the docker CLI does right after start. */
/** What initialResize needs of an API client. */
export interface ResizeClient { request(method: string, path: string, o: { query: Record<string, number> }): Promise<unknown> }

export async function initialResize(api: ResizeClient, path: string): Promise<void> {
  if (!process.stdout.isTTY) return;
  await api.request("POST", path, { query: { h: process.stdout.rows, w: process.stdout.columns } }).catch(() => {});
}

/**
 * Docker-style pull/push progress: on a terminal one line per layer, redrawn in place as messages arrive;
 * otherwise one line per status change (no "Downloading" chatter in logs).
 */
export function progressPrinter(quiet: boolean, write: (s: string) => void, tty = !!process.stderr.isTTY): (m: { status?: string; id?: string; progress?: string }) => void {
  const ids: string[] = [];
  const lines = new Map<string, string>();
  return (m) => {
    if (quiet || !m.status) return;
    const text = `${m.id ? `${m.id}: ` : ""}${m.status}${m.progress ? ` ${m.progress}` : ""}`;
    if (!m.id || !/^[0-9a-f]{12}$/.test(m.id)) { write(text + "\n"); if (tty) ids.length = 0; return; }
    if (!tty) { if (m.status !== "Downloading" && m.status !== "Extracting") write(text + "\n"); return; }
    const i = ids.indexOf(m.id);
    if (i < 0) { ids.push(m.id); lines.set(m.id, text); write(text + "\n"); return; }
    lines.set(m.id, text);
    const up = ids.length - i;
    write(`\x1b[${up}A\r\x1b[2K${text}\x1b[${up}B\r`);
  };
}

/** Reads one line from stdin (the confirmation prompt); "" at EOF. */
export function readLine(): Promise<string> {
  return new Promise((resolve) => {
    let buf = "";
    const done = () => { process.stdin.pause(); process.stdin.removeAllListeners("data"); resolve(buf.split("\n")[0]); };
    process.stdin.on("data", (d) => { buf += d; if (buf.includes("\n")) done(); });
    process.stdin.once("end", done);
    process.stdin.resume();
  });
}
