/**
 * COPY --link, as BuildKit's linked copy: the layer is made on scratch (the parent's symlinks are not
 * followed; the destination's directories are made fresh) and kept by what it is made of, so when an
 * earlier step changes, the same layer (the same diff ID) goes onto the new parent and the step shows as
 * CACHED, where a plain COPY runs again.
 *
 * Docker's figures, for the plain COPY half (dockerd 20.10 with BuildKit, `DOCKER_BUILDKIT=1 docker build`,
 * V=1 then V=2): both COPY steps run again (not CACHED); `COPY big /big` has the same diff ID both times
 * (its tar is the same bytes), `COPY big /opt/app/big` a new one when the builds are a second apart (the
 * directories it makes are stamped with the time they are made: not asserted, it depends on the clock).
 * That dockerd's frontend has no --link ("Unknown flag: link"); the --link half is BuildKit's documented
 * behaviour (Dockerfile reference, COPY --link: "the destination path created with --link will always be
 * a path containing only directories"; a changed parent does not invalidate the layer).
 */
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, writeFileSync, rmSync, utimesSync } from "node:fs";
import { randomBytes } from "node:crypto";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Daemon } from "./harness.js";

const d = new Daemon();
const dirs: string[] = [];
const tags: string[] = [];

before(async () => {
  await d.start();
  await d.bootstrap();
});

after(async () => {
  try {
    for (const t of tags) d.berth(["rmi", "-f", t]);
    await d.stop();
  } finally { for (const x of dirs) rmSync(x, { recursive: true, force: true }); }
});

function context(files: Record<string, string | Buffer>): string {
  const dir = mkdtempSync(join(tmpdir(), "berth-blink-"));
  dirs.push(dir);
  for (const [name, data] of Object.entries(files)) {
    writeFileSync(join(dir, name), data);
    utimesSync(join(dir, name), new Date("2020-01-01T00:00:00Z"), new Date("2020-01-01T00:00:00Z"));
  }
  return dir;
}

/** The step lines of a plain build: "[k/n] INSTR" → "CACHED" or "DONE". */
function steps(stderr: string): Record<string, string> {
  const names = new Map<string, string>();
  const out: Record<string, string> = {};
  for (const l of stderr.split("\n")) {
    const h = /^#(\d+) \[(?!internal)[^\]]*\] (.*)$/.exec(l);
    if (h) { names.set(h[1], h[2]); continue; }
    const r = /^#(\d+) (CACHED|DONE)/.exec(l);
    if (r && names.has(r[1])) out[names.get(r[1])!] = r[2];
  }
  return out;
}

function buildV(ctx: string, tag: string, v: string): { layers: string[]; id: string; steps: Record<string, string> } {
  tags.push(tag);
  const r = d.berth(["build", "--progress=plain", "--build-arg", `V=${v}`, "-t", tag, ctx]);
  assert.equal(r.code, 0, r.stderr);
  const layers = JSON.parse(d.berth(["image", "inspect", "-f", "{{json .RootFS.Layers}}", tag]).stdout) as string[];
  return { layers, id: d.berth(["image", "inspect", "-f", "{{.Id}}", tag]).stdout.trim(), steps: steps(r.stderr) };
}

test("COPY --link after a changed step: the same layer (diff ID) on the new parent, CACHED; plain COPY runs again, as BuildKit", () => {
  const big = randomBytes(300_000);
  const head = "FROM busybox\nARG V\nRUN echo $V > /v\n";
  const link = context({ Dockerfile: `${head}COPY --link big /big\nCOPY --link big /opt/app/big\n`, big });
  const plain = context({ Dockerfile: `${head}COPY big /big\nCOPY big /opt/app/big\n`, big });

  const l1 = buildV(link, "blink-link:1", "1");
  // A new mtime for big: a layer made again would differ (the tar carries it); a reused one does not (the key is the content).
  utimesSync(join(link, "big"), new Date("2021-01-01T00:00:00Z"), new Date("2021-01-01T00:00:00Z"));
  const l2 = buildV(link, "blink-link:2", "2");
  assert.equal(l1.layers.length, l2.layers.length);
  const n = l1.layers.length;
  // The RUN's layer is new; both --link layers are the ones the first build made, even the one that makes /opt/app.
  assert.notEqual(l2.layers[n - 3], l1.layers[n - 3]);
  assert.deepEqual(l2.layers.slice(n - 2), l1.layers.slice(n - 2));
  assert.notEqual(l2.id, l1.id);
  assert.equal(l2.steps["RUN echo $V > /v"], "DONE");
  assert.equal(l2.steps["COPY --link big /big"], "CACHED");
  assert.equal(l2.steps["COPY --link big /opt/app/big"], "CACHED");
  // The image is the new parent plus that layer: the new /v, the copied files.
  assert.equal(d.berth(["run", "--rm", "blink-link:2", "sh", "-c", "cat /v; wc -c < /big; cmp /big /opt/app/big && echo same"]).stdout, "2\n300000\nsame\n");

  const p1 = buildV(plain, "blink-plain:1", "1"), p2 = buildV(plain, "blink-plain:2", "2");
  assert.equal(p2.steps["COPY big /big"], "DONE");
  assert.equal(p2.steps["COPY big /opt/app/big"], "DONE");
  // As dockerd+BuildKit: run again, the same tar for /big (its bytes are the same: nothing of the parent is in it).
  assert.equal(p2.layers[n - 2], p1.layers[n - 2]);
  assert.notEqual(p2.id, p1.id);

  // A rebuild with nothing changed is the same image, from the cache (the --link step included).
  const l3 = buildV(link, "blink-link:2", "2");
  assert.equal(l3.id, l2.id);
  assert.equal(l3.steps["COPY --link big /opt/app/big"], "CACHED");
});

test("COPY --link on another base image: the same layer on it, CACHED", () => {
  const base = context({ Dockerfile: "FROM busybox\nRUN echo other > /other\n" });
  tags.push("blink-base2");
  const r = d.berth(["build", "-q", "-t", "blink-base2", base]);
  assert.equal(r.code, 0, r.stderr);
  const ctx = context({ Dockerfile: "ARG BASE\nFROM $BASE\nCOPY --link --chmod=600 big /opt/app/big\n", big: randomBytes(1000) });
  const layers = (tag: string, b: string) => {
    tags.push(tag);
    const out = d.berth(["build", "--progress=plain", "--build-arg", `BASE=${b}`, "-t", tag, ctx]);
    assert.equal(out.code, 0, out.stderr);
    return { top: (JSON.parse(d.berth(["image", "inspect", "-f", "{{json .RootFS.Layers}}", tag]).stdout) as string[]).at(-1), steps: steps(out.stderr) };
  };
  const a = layers("blink-onbase:1", "busybox");
  utimesSync(join(ctx, "big"), new Date("2022-01-01T00:00:00Z"), new Date("2022-01-01T00:00:00Z"));
  const b = layers("blink-onbase:2", "blink-base2");
  assert.equal(b.top, a.top);
  assert.equal(b.steps["COPY --link --chmod=600 big /opt/app/big"], "CACHED");
  assert.equal(d.berth(["run", "--rm", "blink-onbase:2", "sh", "-c", "cat /other; stat -c %a /opt/app/big"]).stdout, "other\n600\n");
});

test("COPY --link into a path that is a symlink in the parent: not followed, the path is made a directory (plain COPY follows it, as Docker)", () => {
  const head = "FROM busybox\nRUN mkdir /real && ln -s /real /lnk\n";
  const show = ["sh", "-c", "ls -ld /lnk | cut -c1; echo real:; ls /real; echo lnk:; ls /lnk/"];
  const link = context({ Dockerfile: `${head}COPY --link f /lnk/f\n`, f: "hi\n" });
  tags.push("blink-sym-link");
  let r = d.berth(["build", "-q", "-t", "blink-sym-link", link]);
  assert.equal(r.code, 0, r.stderr);
  assert.equal(d.berth(["run", "--rm", "blink-sym-link", ...show]).stdout, "d\nreal:\nlnk:\nf\n");

  // Docker's answer for plain COPY (dockerd 20.10 + BuildKit): "l", real: f, lnk: f.
  const plain = context({ Dockerfile: `${head}COPY f /lnk/f\n`, f: "hi\n" });
  tags.push("blink-sym-plain");
  r = d.berth(["build", "-q", "-t", "blink-sym-plain", plain]);
  assert.equal(r.code, 0, r.stderr);
  assert.equal(d.berth(["run", "--rm", "blink-sym-plain", ...show]).stdout, "l\nreal:\nf\nlnk:\nf\n");
});
