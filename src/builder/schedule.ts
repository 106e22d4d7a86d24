/** The solver's scheduling: stage output kept in file order while stages run side by side, and a bound on how many run. */

/** Where a stage's messages go: straight to the client while it is the first unfinished stage, else held. */
export interface StageOutput { say: (line: string) => void; output: (chunk: Buffer) => void }

/**
 * The build's output in file order while stages run side by side: the first unfinished stage streams,
 * each other one is held until every stage before it has finished (then shown at once, and it streams
 * from there if it is still running).
 */
export class OrderedOutput {
  private readonly held: { kind: "say" | "out"; data: string | Buffer }[][];
  private readonly finished: boolean[];
  private cursor = 0;
  constructor(n: number, private readonly sink: { say: (line: string) => void; output: (chunk: Buffer) => void }) {
    this.held = Array.from({ length: n }, () => []);
    this.finished = new Array<boolean>(n).fill(false);
  }
  stream(slot: number): StageOutput {
    const put = (kind: "say" | "out", data: string | Buffer): void => {
      if (slot === this.cursor) this.emit(kind, data);
      else this.held[slot].push({ kind, data });
    };
    return { say: (l) => put("say", l), output: (c) => put("out", c) };
  }
  finish(slot: number): void {
    this.finished[slot] = true;
    while (this.cursor < this.finished.length && this.finished[this.cursor]) {
      this.cursor++;
      this.drain(this.cursor);
    }
  }
  /** Everything still held, in order (a failed build shows what every stage got to). */
  flush(): void { for (let i = this.cursor; i < this.held.length; i++) this.drain(i); }
  private drain(slot: number): void {
    if (slot >= this.held.length) return;
    for (const m of this.held[slot]) this.emit(m.kind, m.data);
    this.held[slot] = [];
  }
  private emit(kind: "say" | "out", data: string | Buffer): void {
    if (kind === "say") this.sink.say(data as string); else this.sink.output(data as Buffer);
  }
}

/** At most n holders at once; the others wait in order. */
export class Semaphore {
  private readonly waiting: (() => void)[] = [];
  constructor(private free: number) {}
  async acquire(): Promise<void> {
    if (this.free > 0) { this.free--; return; }
    await new Promise<void>((r) => this.waiting.push(r));
  }
  release(): void {
    const next = this.waiting.shift();
    if (next) next(); else this.free++;
  }
}
