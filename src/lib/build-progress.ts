/**
 * A build's progress as BuildKit shows it: the steps (vertices) of the build, each started, maybe CACHED,
 * with its log and status lines, DONE after so long or ERROR. berthd sends these events in its build
 * stream (`{"id":"berth.progress","aux":<event>}`) when the client asks (`berthprogress=1`); `berth build`
 * renders them: `plain` (BuildKit's plain printer: `#N name`, `#N 0.238 out`, `#N DONE 0.3s`) or `tty`
 * (a live view, redrawn in place, of every step with its time, the running ones with their last lines).
 *
 * Times are the daemon's clock in milliseconds; the renderers only take differences of them.
 */

/** One event: a vertex (new, or changed), a log chunk of one, or a status line of one. */
export type ProgressEvent =
  | { v: { id: number; name: string; started?: number; completed?: number; cached?: boolean; error?: string } }
  | { log: { id: number; t: number; data: string } }
  | { status: { id: number; text: string } };

interface V { id: number; name: string; started?: number; completed?: number; cached?: boolean; error?: string; logs: string[]; partial: string; statuses: string[] }

/** BuildKit's plain printer: each vertex's lines grouped under `#N`, a blank line whenever the vertex changes. */
export class PlainProgress {
  private readonly vs = new Map<number, V>();
  private last = -1;
  private printed = false;
  constructor(private readonly write: (s: string) => void) {}

  private vertex(id: number): V {
    let v = this.vs.get(id);
    if (!v) { v = { id, name: "", logs: [], partial: "", statuses: [] }; this.vs.set(id, v); }
    return v;
  }

  /** Switches to vertex v: a blank line between groups, and v's header again when it is not the last one printed. */
  private to(v: V): void {
    if (this.last === v.id) return;
    if (this.printed) this.write("\n");
    this.write(`#${v.id} ${v.name}\n`);
    this.last = v.id;
    this.printed = true;
  }

  event(e: ProgressEvent): void {
    if ("v" in e) {
      const v = this.vertex(e.v.id);
      const wasStarted = v.started !== undefined, wasDone = v.completed !== undefined;
      Object.assign(v, { name: e.v.name, started: e.v.started ?? v.started, completed: e.v.completed ?? v.completed, cached: e.v.cached ?? v.cached, error: e.v.error ?? v.error });
      if (v.started !== undefined && !wasStarted) this.to(v);
      if (v.completed !== undefined && !wasDone) {
        this.to(v);
        this.flushPartial(v);
        if (v.cached) this.write(`#${v.id} CACHED\n`);
        else if (v.error) this.write(`#${v.id} ERROR: ${v.error}\n`);
        else this.write(`#${v.id} DONE ${secs(v.completed - (v.started ?? v.completed))}\n`);
      }
    } else if ("log" in e) {
      const v = this.vertex(e.log.id);
      const text = v.partial + e.log.data;
      const lines = text.split("\n");
      v.partial = lines.pop()!;
      if (!lines.length) return;
      this.to(v);
      for (const l of lines) {
        const line = `#${v.id} ${(e.log.t / 1000).toFixed(3)} ${l}`;
        this.write(line + "\n");
        v.logs.push(line);
      }
      if (v.logs.length > 10) v.logs.splice(0, v.logs.length - 10);
    } else {
      const v = this.vertex(e.status.id);
      this.to(v);
      this.write(`#${v.id} ${e.status.text}\n`);
    }
  }

  private flushPartial(v: V): void {
    if (!v.partial) return;
    const t = v.completed !== undefined && v.started !== undefined ? v.completed - v.started : 0;
    this.write(`#${v.id} ${(t / 1000).toFixed(3)} ${v.partial}\n`);
    v.partial = "";
  }

  /** Nothing more to show (BuildKit's plain output ends with the last vertex's line). */
  end(): void { /* nothing held */ }

  /** After a failure: each failed step framed with its last log lines, as BuildKit prints them before the error. */
  failed(): void { this.write(failureBlocks([...this.vs.values()], (l) => l)); }
}

function secs(ms: number): string { return `${(Math.max(0, ms) / 1000).toFixed(1)}s`; }

/**
 * The live view: a header (`[+] Building 2.3s (5/8)`) and one line per vertex (` => CACHED [2/3] RUN ...
 * 0.0s`), the running ones followed by their last log lines; redrawn in place (the cursor moved up over
 * what was drawn last), at most every 100 ms, and once more at the end (`FINISHED`).
 */
export class TtyProgress {
  private readonly vs = new Map<number, V>();
  private drawn = 0;
  private timer: NodeJS.Timeout | undefined;
  private readonly t0 = Date.now();
  /** The daemon's clock minus ours, learned from the first event (times on screen tick with our clock). */
  private skew: number | undefined;
  constructor(private readonly write: (s: string) => void, private readonly columns = () => process.stderr.columns || 80, private readonly rows = () => process.stderr.rows || 24) {}

  event(e: ProgressEvent): void {
    if ("v" in e) {
      let v = this.vs.get(e.v.id);
      if (!v) { v = { id: e.v.id, name: e.v.name, logs: [], partial: "", statuses: [] }; this.vs.set(e.v.id, v); }
      Object.assign(v, { name: e.v.name, started: e.v.started ?? v.started, completed: e.v.completed ?? v.completed, cached: e.v.cached ?? v.cached, error: e.v.error ?? v.error });
      if (this.skew === undefined && v.started !== undefined) this.skew = v.started - Date.now();
    } else if ("log" in e) {
      const v = this.vs.get(e.log.id);
      if (!v) return;
      const lines = (v.partial + e.log.data).split("\n");
      v.partial = lines.pop()!;
      v.logs.push(...lines);
      if (v.logs.length > 6) v.logs.splice(0, v.logs.length - 6);
    } else {
      this.vs.get(e.status.id)?.statuses.push(e.status.text);
    }
    this.schedule();
  }

  private schedule(): void {
    if (this.timer) return;
    this.timer = setTimeout(() => { this.timer = undefined; this.draw(false); }, 100);
    this.timer.unref?.();
  }

  /** The screen as it is now (exported for tests). */
  lines(final: boolean): string[] {
    const now = Date.now() + (this.skew ?? 0);
    const all = [...this.vs.values()].filter((v) => v.started !== undefined);
    const done = all.filter((v) => v.completed !== undefined).length;
    const total = Math.max(0, (Date.now() - this.t0) / 1000).toFixed(1);
    const out = [`[+] Building ${total}s (${done}/${this.vs.size})${final ? " FINISHED" : ""}`];
    const width = this.columns();
    for (const v of all) {
      const t = v.cached ? "0.0s" : secs((v.completed ?? now) - v.started!);
      const label = ` => ${v.cached ? "CACHED " : v.error ? "ERROR " : ""}${v.name}`;
      out.push(fit(label, t, width));
      if (v.completed === undefined || v.error) {
        for (const s of v.statuses.slice(-3)) out.push(fit(` => => ${s}`, "", width));
        for (const l of [...v.logs, ...(v.partial ? [v.partial] : [])].slice(-6)) out.push(fit(` => => # ${l}`, "", width));
      }
    }
    // Never more than the screen: the oldest finished steps scroll away first.
    const max = Math.max(2, this.rows() - 1);
    return out.length > max ? [out[0], ...out.slice(out.length - max + 1)] : out;
  }

  private draw(final: boolean): void {
    const lines = this.lines(final);
    let s = this.drawn ? `\x1b[${this.drawn}A` : "";
    for (const l of lines) s += `\r\x1b[2K${l}\n`;
    // A shorter screen than the last: the lines below are cleared.
    if (this.drawn > lines.length) { for (let i = lines.length; i < this.drawn; i++) s += "\r\x1b[2K\n"; s += `\x1b[${this.drawn - lines.length}A`; }
    this.drawn = lines.length;
    this.write(s);
  }

  end(): void {
    if (this.timer) { clearTimeout(this.timer); this.timer = undefined; }
    this.draw(true);
  }

  /** After a failure: the last screen, then each failed step framed with its last log lines (as BuildKit). */
  failed(): void {
    this.end();
    this.write(failureBlocks([...this.vs.values()], (l, v) => `#${v.id} ${l}`));
  }
}

/** BuildKit's summary of failed steps: `------`, ` > NAME:`, the step's last lines, `------` (a cancelled one is not framed). */
function failureBlocks(vs: V[], line: (l: string, v: V) => string): string {
  let out = "";
  for (const v of vs) {
    if (!v.error || v.error === "context canceled") continue;
    out += `------\n > ${v.name}:\n`;
    for (const l of v.logs.slice(-10)) out += `${line(l, v)}\n`;
    out += "------\n";
  }
  return out;
}

/** label, padded, then the time flush right; cut to the width. */
function fit(label: string, time: string, width: number): string {
  const room = width - time.length - 1;
  const l = label.length > room ? label.slice(0, Math.max(0, room - 3)) + "..." : label;
  return time ? l + " ".repeat(Math.max(1, width - l.length - time.length)) + time : l.slice(0, width);
}
