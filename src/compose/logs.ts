/** Compose-style log output: every line of every container prefixed with `service-1  | `. */
import type { ApiClient } from "../api/client.js";

export interface Sink { write(s: string): void }

/** Turns a log stream (stdcopy-framed unless tty) into prefixed lines; resolves at the end of the stream. */
export function prefixLines(src: NodeJS.ReadableStream, tty: boolean, prefix: string, out: Sink): Promise<void> {
  return new Promise((resolve, reject) => {
    let frames: Buffer = Buffer.alloc(0);
    let partial = "";
    const text = (s: string) => {
      partial += s;
      let i: number;
      while ((i = partial.indexOf("\n")) >= 0) { out.write(`${prefix}${partial.slice(0, i)}\n`); partial = partial.slice(i + 1); }
    };
    src.on("data", (d: Buffer) => {
      if (tty) { text(d.toString()); return; }
      frames = frames.length ? Buffer.concat([frames, d]) : d;
      while (frames.length >= 8) {
        const len = frames.readUInt32BE(4);
        if (frames.length < 8 + len) break;
        text(frames.subarray(8, 8 + len).toString());
        frames = frames.subarray(8 + len);
      }
    });
    const end = () => { if (partial) { out.write(`${prefix}${partial}\n`); partial = ""; } resolve(); };
    src.on("end", end);
    src.on("close", end);
    src.on("error", reject);
  });
}

export interface LogTarget { id: string; name: string; tty: boolean }

/** The prefix column: names padded to the longest one, as docker compose prints them. */
export function prefixes(names: string[]): Map<string, string> {
  const w = Math.max(0, ...names.map((n) => n.length));
  return new Map(names.map((n) => [n, `${n.padEnd(w)}  | `]));
}

/** Streams the logs of several containers at once; resolves when every stream ended. onEnd runs per container. */
export async function streamLogs(api: ApiClient, targets: LogTarget[], o: { follow: boolean; tail?: string; timestamps?: boolean; noPrefix?: boolean; since?: string }, out: Sink, onEnd?: (t: LogTarget) => Promise<void>): Promise<void> {
  const pre = prefixes(targets.map((t) => t.name));
  await Promise.all(targets.map(async (t) => {
    const res = await api.stream("GET", `/containers/${t.id}/logs`, { query: { stdout: 1, stderr: 1, follow: o.follow, tail: o.tail ?? "all", timestamps: !!o.timestamps, since: o.since } });
    await prefixLines(res, t.tty, o.noPrefix ? "" : pre.get(t.name)!, out);
    if (onEnd) await onEnd(t);
  }));
}
