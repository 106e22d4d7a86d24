/**
 * Docker's multiplexed stream format ("stdcopy"): each frame is an 8-byte
 * header [stream, 0, 0, 0, size uint32 BE] followed by the payload.
 * stream: 0 stdin, 1 stdout, 2 stderr, 3 system error.
 */
export function frame(stream: 0 | 1 | 2 | 3, payload: Buffer | string): Buffer {
  const body = typeof payload === "string" ? Buffer.from(payload) : payload;
  const header = Buffer.alloc(8);
  header[0] = stream;
  header.writeUInt32BE(body.length, 4);
  return Buffer.concat([header, body]);
}
