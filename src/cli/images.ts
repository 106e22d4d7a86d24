/** Image commands: images, rmi, tag, import, pull, push, history, image bootstrap/inspect/prune. */
import { createReadStream, createWriteStream } from "node:fs";
import { pipeline } from "node:stream/promises";
import type { Command } from "./command.js";
import { UsageError, filtersQuery } from "../lib/args.js";
import { ApiError } from "../api/client.js";
import { formatRows } from "../lib/template.js";
import { humanDuration, humanSize, goTime, ellipsis } from "../lib/format.js";
import { inspectCmd, pull } from "./containers.js";
import type { HistoryResponseItem, ImageDeleteResponseItem, ImagePruneResponse, ImageSummary, ProgressMessage } from "../api/types.js";

type Obj = Record<string, unknown>;

const IMAGE_HEADERS: Record<string, string> = { Repository: "REPOSITORY", Tag: "TAG", ID: "IMAGE ID", Digest: "DIGEST", CreatedSince: "CREATED", CreatedAt: "CREATED AT", Size: "SIZE", Containers: "CONTAINERS", SharedSize: "SHARED SIZE", UniqueSize: "UNIQUE SIZE", VirtualSize: "VIRTUAL SIZE" };

/** The docker CLI's imageContext placeholders, per repository:tag of each image. */
function imageRows(list: ImageSummary[], noTrunc: boolean): Obj[] {
  const rows: Obj[] = [];
  for (const img of list) {
    const tags = img.RepoTags?.length ? img.RepoTags : ["<none>:<none>"];
    const digests = img.RepoDigests ?? [];
    const shared = img.SharedSize ?? -1;
    for (const t of tags) {
      const i = t.lastIndexOf(":");
      const repo = t.slice(0, i), tag = t.slice(i + 1);
      const digest = digests.find((d) => d.startsWith(repo + "@"))?.split("@")[1] ?? "<none>";
      rows.push({
        ID: noTrunc ? img.Id : img.Id.replace("sha256:", "").slice(0, 12), Repository: repo, Tag: tag, Digest: digest,
        CreatedSince: `${humanDuration(Date.now() - img.Created * 1000)} ago`, CreatedAt: goTime(img.Created),
        Size: humanSize(img.Size), Containers: img.Containers === -1 ? "N/A" : String(img.Containers ?? "N/A"),
        // docker's VirtualSize has 4 significant digits (HumanSizeWithPrecision(…, 4)), Size 3.
        SharedSize: shared === -1 ? "N/A" : humanSize(shared), UniqueSize: shared === -1 ? "N/A" : humanSize(img.Size - shared),
        VirtualSize: humanSize(img.VirtualSize ?? img.Size, 4),
      });
    }
  }
  return rows;
}


const imagesCmd: Command = {
  name: "images", usage: "images [OPTIONS] [REPOSITORY[:TAG]]", desc: "List images",
  flags: [
    { long: "all", short: "a", type: "bool", desc: "Show all images" },
    { long: "quiet", short: "q", type: "bool", desc: "Only show image IDs" },
    { long: "digests", type: "bool", desc: "Show digests" },
    { long: "no-trunc", type: "bool", desc: "Don't truncate output" },
    { long: "filter", short: "f", type: "list", desc: "Filter output based on conditions provided" },
    { long: "format", type: "string", desc: "Format output using a custom template" },
  ],
  run: async (c, f, a) => {
    const filters = [...(f.filter as string[])];
    if (a[0]) filters.push(`reference=${a[0]}`);
    const list = await c.api.json<ImageSummary[]>("GET", "/images/json", { query: { all: !!f.all, digests: !!f.digests, filters: filtersQuery(filters) } });
    const rows = imageRows(list, !!f["no-trunc"]);
    if (f.quiet) { c.out([...new Set(rows.map((r) => String(r.ID)))].map((x) => x + "\n").join("")); return 0; }
    const fmt = (f.format as string | undefined) ?? `table {{.Repository}}\t{{.Tag}}${f.digests ? "\t{{.Digest}}" : ""}\t{{.ID}}\t{{.CreatedSince}}\t{{.Size}}`;
    c.out(formatRows(fmt, rows, IMAGE_HEADERS));
    return 0;
  },
};

const rmiCmd: Command = {
  name: "rmi", usage: "rmi [OPTIONS] IMAGE [IMAGE...]", desc: "Remove one or more images",
  flags: [{ long: "force", short: "f", type: "bool", desc: "Force removal of the image" }, { long: "no-prune", type: "bool", desc: "Do not delete untagged parents" }],
  run: async (c, f, a) => {
    if (!a.length) throw new UsageError(`"rmi" requires at least 1 argument.`);
    let failed = 0;
    for (const img of a) {
      try {
        const r = await c.api.json<ImageDeleteResponseItem[]>("DELETE", `/images/${img}`, { query: { force: !!f.force, noprune: !!f["no-prune"] } });
        for (const x of r) c.out(x.Untagged ? `Untagged: ${x.Untagged}\n` : `Deleted: ${x.Deleted}\n`);
      } catch (e) { failed++; c.err(e instanceof ApiError ? `Error response from daemon: ${e.message}\n` : `${(e as Error).message}\n`); }
    }
    return failed ? 1 : 0;
  },
};

const tagCmd: Command = {
  name: "tag", usage: "tag SOURCE_IMAGE[:TAG] TARGET_IMAGE[:TAG]", desc: "Create a tag TARGET_IMAGE that refers to SOURCE_IMAGE", flags: [],
  run: async (c, _f, a) => {
    if (a.length !== 2) throw new UsageError(`"tag" requires exactly 2 arguments.`);
    const t = a[1];
    const slash = t.lastIndexOf("/"), colon = t.lastIndexOf(":");
    const [repo, tag] = colon > slash ? [t.slice(0, colon), t.slice(colon + 1)] : [t, undefined];
    await c.api.request("POST", `/images/${a[0]}/tag`, { query: { repo, tag } });
    return 0;
  },
};

const importCmd: Command = {
  name: "import", usage: "import [OPTIONS] file|URL|- [REPOSITORY[:TAG]]", desc: "Import the contents from a tarball to create a filesystem image",
  flags: [{ long: "change", short: "c", type: "list", desc: "Apply Dockerfile instruction to the created image" }, { long: "message", short: "m", type: "string", desc: "Set commit message for imported image" }, { long: "platform", type: "string", desc: "Set platform if server is multi-platform capable" }],
  run: async (c, f, a) => {
    if (a.length < 1 || a.length > 2) throw new UsageError(`"import" requires at least 1 and at most 2 arguments.`);
    const src = a[0];
    if (/^https?:\/\//.test(src)) throw new UsageError("importing from a URL is not supported; download it and import the file");
    let repo: string | undefined, tag: string | undefined;
    if (a[1]) { const s = a[1].lastIndexOf("/"), k = a[1].lastIndexOf(":"); [repo, tag] = k > s ? [a[1].slice(0, k), a[1].slice(k + 1)] : [a[1], undefined]; }
    const body = src === "-" ? process.stdin : createReadStream(src);
    if (src !== "-") await new Promise<void>((res, rej) => { (body as NodeJS.ReadableStream).once("open" as "data", () => res()); (body as NodeJS.ReadableStream).once("error", () => rej(new UsageError(`open ${src}: no such file or directory`))); });
    const res = await c.api.json<{ status?: string } | string>("POST", "/images/create", { query: { fromSrc: "-", repo, tag, message: f.message as string | undefined, changes: f.change as string[] }, raw: body, headers: { "Content-Type": "application/x-tar" } });
    const status = typeof res === "string" ? (JSON.parse(res.trim().split("\n").pop() || "{}") as { status?: string }).status : res.status;
    c.out(`${status ?? ""}\n`);
    return 0;
  },
};

const historyCmd: Command = {
  name: "history", usage: "history [OPTIONS] IMAGE", desc: "Show the history of an image",
  flags: [{ long: "no-trunc", type: "bool", desc: "Don't truncate output" }, { long: "quiet", short: "q", type: "bool", desc: "Only show image IDs" }, { long: "human", short: "H", type: "bool", default: true, desc: "Print sizes and dates in human readable format" }, { long: "format", type: "string", desc: "Format output using a custom template" }],
  run: async (c, f, a) => {
    if (a.length !== 1) throw new UsageError(`"history" requires exactly 1 argument.`);
    const rows = await c.api.json<HistoryResponseItem[]>("GET", `/images/${a[0]}/history`);
    const noTrunc = !!f["no-trunc"];
    const view = rows.map((r) => ({
      ID: r.Id.startsWith("sha256:") && !noTrunc ? r.Id.slice(7, 19) : r.Id,
      CreatedSince: `${humanDuration(Date.now() - r.Created * 1000)} ago`, CreatedAt: goTime(r.Created),
      CreatedBy: noTrunc ? r.CreatedBy : ellipsis(r.CreatedBy, 45), Size: humanSize(r.Size), Comment: r.Comment,
    }));
    if (f.quiet) { c.out(view.map((v) => `${v.ID}\n`).join("")); return 0; }
    c.out(formatRows((f.format as string) ?? "table {{.ID}}\t{{.CreatedSince}}\t{{.CreatedBy}}\t{{.Size}}\t{{.Comment}}", view, { ID: "IMAGE", CreatedSince: "CREATED", CreatedAt: "CREATED AT", CreatedBy: "CREATED BY", Size: "SIZE", Comment: "COMMENT" }));
    return 0;
  },
};

const pullCmd: Command = {
  name: "pull", usage: "pull [OPTIONS] NAME[:TAG|@DIGEST]", desc: "Download an image from a registry",
  flags: [{ long: "quiet", short: "q", type: "bool", desc: "Suppress verbose output" }, { long: "platform", type: "string", desc: "Set platform" }, { long: "all-tags", short: "a", type: "bool", desc: "Download all tagged images in the repository" }],
  run: async (c, f, a) => { if (a.length !== 1) throw new UsageError(`"pull" requires exactly 1 argument.`); await pull(c, a[0], !!f.quiet, f.platform as string | undefined); return 0; },
};

const bootstrapCmd: Command = {
  name: "image bootstrap", usage: "image bootstrap NAME", desc: "Create a base image without a registry: busybox (busybox-static) or debian:<suite>[-slim] (mmdebstrap)",
  flags: [{ long: "platform", type: "string", desc: "Set platform (busybox: linux/arm64 from Debian's busybox-static:arm64, scripts/foreign-arch.sh)" }],
  run: async (c, f, a) => {
    if (a.length !== 1) throw new UsageError(`"image bootstrap" requires exactly 1 argument.`);
    const r = await c.api.json<{ status: string; id: string }>("POST", "/berth/images/bootstrap", { query: { name: a[0], platform: (f.platform as string) || undefined } });
    c.out(`${r.id}\n`);
    return 0;
  },
};

const pruneCmd: Command = {
  name: "image prune", usage: "image prune [OPTIONS]", desc: "Remove unused images",
  flags: [{ long: "all", short: "a", type: "bool", desc: "Remove all unused images, not just dangling ones" }, { long: "force", short: "f", type: "bool", desc: "Do not prompt for confirmation" }, { long: "filter", type: "list", desc: "Provide filter values" }],
  run: async (c, f) => {
    const r = await c.api.json<ImagePruneResponse>("POST", "/images/prune", { query: { filters: JSON.stringify({ dangling: [f.all ? "false" : "true"] }) } });
    if (r.ImagesDeleted?.length) c.out(`Deleted Images:\n${r.ImagesDeleted.map((x) => (x.Untagged ? `untagged: ${x.Untagged}` : `deleted: ${x.Deleted}`)).join("\n")}\n\n`);
    c.out(`Total reclaimed space: ${humanSize(r.SpaceReclaimed)}\n`);
    return 0;
  },
};

const imageInspect: Command = {
  name: "image inspect", usage: "image inspect [OPTIONS] IMAGE [IMAGE...]", desc: "Display detailed information on one or more images",
  flags: [{ long: "format", short: "f", type: "string", desc: "Format output using a custom template" }],
  run: (c, f, a) => inspectCmd(c, f, a, "image"),
};

/** Writes a tar stream to -o FILE or stdout (never to a terminal, as Docker). */
async function toOutput(res: NodeJS.ReadableStream, output: string | undefined): Promise<void> {
  if (!output && process.stdout.isTTY) throw new UsageError(`cowardly refusing to save to a terminal. Use the -o flag or redirect`);
  await pipeline(res, output ? createWriteStream(output) : process.stdout);
}

const saveCmd: Command = {
  name: "save", usage: "save [OPTIONS] IMAGE [IMAGE...]", desc: "Save one or more images to a tar archive (streamed to STDOUT by default)",
  flags: [{ long: "output", short: "o", type: "string", desc: "Write to a file, instead of STDOUT" }],
  run: async (c, f, a) => {
    if (!a.length) throw new UsageError(`"save" requires at least 1 argument.`);
    if (!f.output && process.stdout.isTTY) throw new UsageError("cowardly refusing to save to a terminal. Use the -o flag or redirect");
    const res = await c.api.stream("GET", "/images/get", { query: { names: a } });
    await toOutput(res, f.output as string | undefined);
    return 0;
  },
};

const loadCmd: Command = {
  name: "load", usage: "load [OPTIONS]", desc: "Load an image from a tar archive or STDIN",
  flags: [{ long: "input", short: "i", type: "string", desc: "Read from tar archive file, instead of STDIN" }, { long: "quiet", short: "q", type: "bool", desc: "Suppress the load output" }],
  run: async (c, f) => {
    if (!f.input && process.stdin.isTTY) throw new UsageError("requested load from stdin, but stdin is empty");
    const body = f.input ? createReadStream(String(f.input)) : process.stdin;
    const res = await c.api.stream("POST", "/images/load", { query: { quiet: !!f.quiet }, raw: body, headers: { "Content-Type": "application/x-tar" } });
    const { jsonLines } = await import("../api/client.js");
    for await (const m of jsonLines<ProgressMessage>(res)) {
      if (m.error) { c.err(m.error + "\n"); return 1; }
      if (m.stream) c.out(m.stream);
    }
    return 0;
  },
};

const exportCmd: Command = {
  name: "export", usage: "export [OPTIONS] CONTAINER", desc: "Export a container's filesystem as a tar archive",
  flags: [{ long: "output", short: "o", type: "string", desc: "Write to a file, instead of STDOUT" }],
  run: async (c, f, a) => {
    if (a.length !== 1) throw new UsageError(`"export" requires exactly 1 argument.`);
    if (!f.output && process.stdout.isTTY) throw new UsageError("cowardly refusing to save to a terminal. Use the -o flag or redirect");
    await toOutput(await c.api.stream("GET", `/containers/${a[0]}/export`), f.output as string | undefined);
    return 0;
  },
};

export const imageCommands: Command[] = [
  saveCmd, loadCmd, exportCmd, { ...saveCmd, name: "image save" }, { ...loadCmd, name: "image load" }, { ...exportCmd, name: "container export" },
  imagesCmd, rmiCmd, tagCmd, importCmd, historyCmd, pullCmd, bootstrapCmd, pruneCmd, imageInspect,
  { ...imagesCmd, name: "image ls", usage: "image ls [OPTIONS] [REPOSITORY[:TAG]]" },
  { ...imagesCmd, name: "image list", usage: "image list [OPTIONS] [REPOSITORY[:TAG]]" },
  { ...rmiCmd, name: "image rm", usage: "image rm [OPTIONS] IMAGE [IMAGE...]" },
  { ...tagCmd, name: "image tag" }, { ...importCmd, name: "image import" }, { ...historyCmd, name: "image history" }, { ...pullCmd, name: "image pull" },
];
