/**
 * GET /containers/{id}/attach/ws: attach over a WebSocket, as dockerd's
 * wsContainersAttach. The RFC 6455 handshake (101 Switching Protocols with
 * Sec-WebSocket-Accept), then the container's output as binary frames, raw
 * (never multiplexed, even without a TTY: stdout and stderr share the
 * socket), and the client's frames as the container's stdin. `logs`,
 * `stream`, `stdin`, `stdout`, `stderr` are Docker's query parameters; as in
 * dockerd, stdout and stderr are off unless asked for. When the output ends
 * the server sends a close frame (1000) and closes.
 *
 * The framing is the minimum RFC 6455 asks of a server: unmasked frames out,
 * masked frames in (text, binary, continuation, ping → pong, close → close).
 */
import { createHash } from "node:crypto";
import { BadParameterError, errorMessage } from "../../lib/errors.js";
import type { AttachStreams } from "../../runtime/driver.js";
import { route, HANDLED, bool } from "../router.js";

const GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC11B85";
/** A client frame larger than this is refused (close 1009): stdin arrives in small pieces. */
const MAX_FRAME = 16 * 1024 * 1024;

export const OP = { cont: 0x0, text: 0x1, binary: 0x2, close: 0x8, ping: 0x9, pong: 0xa } as const;

/** One unmasked (server) frame, FIN set. */
export function wsFrame(opcode: number, payload: Buffer = Buffer.alloc(0)): Buffer {
  const n = payload.length;
  const head = n < 126 ? Buffer.from([0x80 | opcode, n]) : n < 65536 ? Buffer.alloc(4) : Buffer.alloc(10);
  if (n >= 126) {
    head[0] = 0x80 | opcode;
    if (n < 65536) { head[1] = 126; head.writeUInt16BE(n, 2); } else { head[1] = 127; head.writeBigUInt64BE(BigInt(n), 2); }
  }
  return Buffer.concat([head, payload]);
}

/** Splits client bytes into frames (unmasking them); returns what is left over. */
export function parseFrames(buf: Buffer, onFrame: (fin: boolean, opcode: number, payload: Buffer) => void): Buffer {
  let off = 0;
  for (;;) {
    if (buf.length - off < 2) break;
    const b0 = buf[off], b1 = buf[off + 1];
    let len = b1 & 0x7f;
    let p = off + 2;
    if (len === 126) { if (buf.length - p < 2) break; len = buf.readUInt16BE(p); p += 2; }
    else if (len === 127) { if (buf.length - p < 8) break; const big = buf.readBigUInt64BE(p); if (big > BigInt(MAX_FRAME)) throw new RangeError("frame too large"); len = Number(big); p += 8; }
    if (len > MAX_FRAME) throw new RangeError("frame too large");
    const masked = (b1 & 0x80) !== 0;
    const mask = masked ? buf.subarray(p, p + 4) : undefined;
    if (masked) p += 4;
    if (buf.length - p < len) break;
    const payload = Buffer.from(buf.subarray(p, p + len));
    if (mask) for (let i = 0; i < payload.length; i++) payload[i] ^= mask[i & 3];
    onFrame((b0 & 0x80) !== 0, b0 & 0x0f, payload);
    off = p + len;
  }
  return buf.subarray(off);
}

/** stdcopy frames → their payloads, for the streams asked for. */
function demuxer(want: { stdout: boolean; stderr: boolean }, out: (d: Buffer) => void): (d: Buffer) => void {
  let pending: Buffer = Buffer.alloc(0);
  return (d) => {
    pending = pending.length ? Buffer.concat([pending, d]) : d;
    while (pending.length >= 8) {
      const len = pending.readUInt32BE(4);
      if (pending.length < 8 + len) break;
      const kind = pending[0];
      if ((kind === 1 && want.stdout) || (kind === 2 && want.stderr) || kind === 3) out(Buffer.from(pending.subarray(8, 8 + len)));
      pending = pending.subarray(8 + len);
    }
  };
}

route("GET", "/containers/{id}/attach/ws", async (e, c) => {
  const sock = c.socket;
  if (!sock) throw new BadParameterError("websocket: the client is not using the websocket protocol: 'upgrade' token not found in 'Connection' header");
  const key = c.req.headers["sec-websocket-key"];
  if (String(c.req.headers.upgrade ?? "").toLowerCase() !== "websocket") throw new BadParameterError("websocket: the client is not using the websocket protocol: 'websocket' token not found in 'Upgrade' header");
  if (typeof key !== "string" || Buffer.from(key, "base64").length !== 16) throw new BadParameterError("websocket: not a websocket handshake: 'Sec-WebSocket-Key' header is missing or blank");
  if (c.req.headers["sec-websocket-version"] !== "13") throw new BadParameterError("websocket: unsupported version: 13 not found in 'Sec-Websocket-Version' header");
  const ct = e.containers.get(c.params[0]);
  const q = c.query;
  const want = { stdout: bool(q, "stdout"), stderr: bool(q, "stderr") };
  const wantStdin = bool(q, "stdin");
  const tty = ct.Config.Tty;
  const accept = createHash("sha1").update(key + GUID).digest("base64");
  sock.write(`HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: ${accept}\r\n\r\n`);
  if (c.head?.length) sock.unshift(c.head);

  let closed = false;
  const send = (d: Buffer): boolean => (closed || sock.destroyed ? true : sock.write(wsFrame(OP.binary, d)));
  const finish = (code = 1000) => {
    if (closed) return;
    closed = true;
    const p = Buffer.alloc(2); p.writeUInt16BE(code);
    if (!sock.destroyed) sock.end(wsFrame(OP.close, p));
  };

  // Client frames: stdin (text or binary, fragmented or not), ping, close.
  let attach: AttachStreams | undefined;
  let rest: Buffer = Buffer.alloc(0);
  const early: Buffer[] = [];
  let inputEnded = false;
  const toStdin = (d: Buffer) => { if (!wantStdin || !ct.Config.OpenStdin) return; if (attach) attach.input.write(d); else early.push(d); };
  const endStdin = () => { inputEnded = true; if (attach && wantStdin && ct.Config.OpenStdin) attach.input.end(); };
  sock.on("data", (d: Buffer) => {
    try {
      rest = parseFrames(rest.length ? Buffer.concat([rest, d]) : d, (_fin, op, payload) => {
        if (op === OP.text || op === OP.binary || op === OP.cont) toStdin(payload);
        else if (op === OP.ping) { if (!closed) sock.write(wsFrame(OP.pong, payload)); }
        else if (op === OP.close) { endStdin(); attach?.close(); finish(); }
      });
    } catch { finish(1009); attach?.close(); }
  });
  sock.on("end", () => { endStdin(); });
  sock.on("error", () => { attach?.close(); sock.destroy(); });
  sock.on("close", () => { closed = true; attach?.close(); });
  sock.resume();

  try {
    if (bool(q, "logs")) {
      const { entries } = e.containers.logs(ct.Id, { follow: false });
      for await (const en of entries) {
        if ((en.stream === "stdout" && want.stdout) || (en.stream === "stderr" && want.stderr)) send(Buffer.from(en.data));
      }
    }
    if (!bool(q, "stream") || closed) { finish(); return HANDLED; }
    attach = await e.containers.attach(ct.Id, { stdin: wantStdin });
  } catch (err) {
    if (!closed) send(Buffer.from(errorMessage(err) + "\n"));
    finish(1011);
    return HANDLED;
  }
  const a = attach;
  if (closed) { a.close(); return HANDLED; }
  for (const d of early.splice(0)) a.input.write(d);
  if (inputEnded && wantStdin && ct.Config.OpenStdin) a.input.end();
  const out = tty ? (d: Buffer) => { if ((want.stdout || want.stderr) && !send(d)) { a.output.pause(); sock.once("drain", () => a.output.resume()); } }
    : demuxer(want, (d) => { if (!send(d)) { a.output.pause(); sock.once("drain", () => a.output.resume()); } });
  a.output.on("data", (d: Buffer) => out(d));
  a.output.on("end", () => finish());
  a.output.on("error", () => finish(1011));
  return HANDLED;
});
