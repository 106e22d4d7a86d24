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

/**
 * docker compose's colours (pkg/formatter/colors.go): the "rainbow" of cyan,
 * yellow, green, magenta, blue, then their intense forms, handed out to the
 * services in turn; the whole prefix ("web-1  | ") is coloured.
 */
const RAINBOW = ["36", "33", "32", "35", "34", "36;1", "33;1", "32;1", "35;1", "34;1"];

/** The prefix column: names padded to the longest one, as docker compose prints them; coloured on request. */
export function prefixes(names: string[], color = false): Map<string, string> {
  const w = Math.max(0, ...names.map((n) => n.length));
  return new Map(names.map((n, i) => [n, color ? `\x1b[${RAINBOW[i % RAINBOW.length]}m${n.padEnd(w)}  | \x1b[0m` : `${n.padEnd(w)}  | `]));
}

/** Whether compose output is coloured: on a terminal, unless --no-color / --ansi never (or --ansi always). */
export function useColor(o: { noColor?: boolean; ansi?: string }): boolean {
  if (o.noColor || o.ansi === "never") return false;
  if (o.ansi === "always") return true;
  return !!process.stdout.isTTY && !process.env.NO_COLOR;
}

/** Streams the logs of several containers at once; resolves when every stream ended. onEnd runs per container. */
export async function streamLogs(api: ApiClient, targets: LogTarget[], o: { follow: boolean; tail?: string; timestamps?: boolean; noPrefix?: boolean; since?: string; until?: string; color?: boolean }, out: Sink, onEnd?: (t: LogTarget) => Promise<void>): Promise<void> {
  const pre = prefixes(targets.map((t) => t.name), !!o.color);
  await Promise.all(targets.map(async (t) => {
    const res = await api.stream("GET", `/containers/${t.id}/logs`, { query: { stdout: 1, stderr: 1, follow: o.follow, tail: o.tail ?? "all", timestamps: !!o.timestamps, since: o.since, until: o.until } });
    await prefixLines(res, t.tty, o.noPrefix ? "" : pre.get(t.name)!, out);
    if (onEnd) await onEnd(t);
  }));
}
