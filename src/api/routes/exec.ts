/** Exec instances: create, inspect, resize, start (hijacked). */
import { BadParameterError, errorMessage } from "../../lib/errors.js";
import { frame } from "../stdcopy.js";
import { ExecCreateSchema, ExecStartSchema } from "../types.js";
import { route, Reply, HANDLED, num, jsonBody, declaredLength, hijack, relay, RAW, MUX, UPGRADE_BODY_LIMIT, JSON_BODY_LIMIT } from "../router.js";

route("POST", "/containers/{id}/exec", async (e, c) => {
  const body = await jsonBody(c.req, ExecCreateSchema, { optional: true });
  const size = body.ConsoleSize;
  return new Reply(201, e.containers.execCreate(c.params[0], { ...body, ConsoleSize: size && size.length === 2 ? [size[0], size[1]] : undefined }));
});
route("GET", "/exec/{id}/json", (e, c) => {
  const r = e.containers.execInspect(c.params[0]);
  // ProcessConfig.user is omitempty in Docker's answer.
  const { user, ...pc } = r.ProcessConfig;
  return { ...r, ExitCode: r.ExitCode ?? 0, ProcessConfig: user ? { ...pc, user } : pc };
});
route("POST", "/exec/{id}/resize", async (e, c) => { await e.containers.execResize(c.params[0], num(c.query, "h") ?? 0, num(c.query, "w") ?? 0); return new Reply(200, ""); });
route("POST", "/exec/{id}/start", async (e, c) => {
  // The exec is looked up before its body is read, and the body is bounded: a hijack request holds only what it needs.
  declaredLength(c.req, c.socket ? UPGRADE_BODY_LIMIT : JSON_BODY_LIMIT);
  const rec = e.containers.execInspect(c.params[0]);
  const body = await jsonBody(c.req, ExecStartSchema, { optional: true, ctx: c });
  const tty = body.Tty ?? rec.ProcessConfig.tty;
  if (body.Detach) {
    await e.containers.execStart(c.params[0], { detach: true, tty });
    if (c.socket) { hijack(c, RAW).end(); return HANDLED; }
    return new Reply(200, "");
  }
  // As Docker: an attached start that fails still answers 200 (101 when upgraded), the error goes
  // into the stream on stdout with "\r\n", and the exit code (126) is for inspect to tell.
  // Upgraded: the 101 goes out first, as dockerd's, so the process's first bytes never share a read
  // with the headers (docker-py reads the raw socket after http.client has buffered past them).
  const sock0 = c.socket ? hijack(c, tty ? RAW : MUX) : undefined;
  let started;
  try {
    started = await e.containers.execStart(c.params[0], { detach: false, tty });
  } catch (err) {
    const inStream = sock0 !== undefined || (err instanceof BadParameterError && /^OCI runtime exec failed/.test(err.message));
    if (!inStream) throw err;
    const msg = errorMessage(err) + "\r\n";
    (sock0 ?? hijack(c, tty ? RAW : MUX)).end(tty ? msg : frame(1, msg));
    return HANDLED;
  }
  const sock = sock0 ?? hijack(c, started.tty ? RAW : MUX);
  relay(sock, started.attach!, rec.OpenStdin, started.tty, { stdout: rec.OpenStdout, stderr: rec.OpenStderr }, started.exitCode);
  return HANDLED;
});
