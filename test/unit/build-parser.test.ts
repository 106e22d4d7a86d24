import { test, describe } from "node:test";
import assert from "node:assert/strict";
import {
  parseDockerfile, parseOnbuildTriggers, parseRunMount, parseGoDuration, heredocData, formatErrorSnippet,
  DockerfileParseError,
  type Instruction, type Stage, type RunInstruction, type CopyInstruction, type AddInstruction, type EnvInstruction,
  type ArgInstruction, type LabelInstruction, type HealthcheckInstruction, type OnbuildInstruction,
  type CmdInstruction, type EntrypointInstruction, type ShellInstruction, type VolumeInstruction,
  type ExposeInstruction, type WorkdirInstruction,
} from "../../src/builder/dockerfile.js";
import { expand, expandString, processWords, expandHeredoc, EXPANSION } from "../../src/builder/expand.js";
import { DockerIgnore, parseDockerignore, cleanPath } from "../../src/lib/dockerignore.js";
import { BadParameterError } from "../../src/lib/errors.js";

/** The only stage's instructions, typed by keyword order for brevity. */
function only(text: string): Instruction[] {
  const df = parseDockerfile(text);
  assert.equal(df.stages.length, 1);
  return df.stages[0].instructions;
}

function first<T extends Instruction>(text: string): T {
  return only(text)[0] as T;
}

/** Asserts parseDockerfile fails with exactly this message (and line, when given). */
function parseFails(text: string, message: string | RegExp, line?: number): void {
  assert.throws(
    () => parseDockerfile(text),
    (e: unknown) => {
      assert.ok(e instanceof DockerfileParseError, `not a DockerfileParseError: ${String(e)}`);
      assert.ok(e instanceof BadParameterError);
      assert.equal(e.status, 400);
      if (typeof message === "string") assert.equal(e.message, message);
      else assert.match(e.message, message);
      if (line !== undefined) assert.equal(e.line, line);
      return true;
    },
  );
}

describe("dockerfile: structure", () => {
  test("multi-stage file with global ARGs, stages, flags, line numbers", () => {
    const df = parseDockerfile(
      [
        "# syntax=docker/dockerfile:1.7",
        "ARG BASE=golang:1.22",
        "ARG VERSION",
        "",
        "FROM --platform=$BUILDPLATFORM ${BASE} AS Build",
        "WORKDIR /src",
        "COPY --chown=1000:1000 --chmod=755 go.mod go.sum ./",
        "RUN --mount=type=cache,target=/root/.cache go build -o /out/app .",
        "",
        "FROM scratch",
        "COPY --from=build --link /out/app /app",
        'ENTRYPOINT ["/app"]',
      ].join("\n"),
    );
    assert.equal(df.escapeToken, "\\");
    assert.deepEqual(df.directives, { syntax: "docker/dockerfile:1.7" });
    assert.deepEqual(df.globalArgs.map((a) => a.vars), [[{ key: "BASE", value: "golang:1.22" }], [{ key: "VERSION", value: undefined }]]);
    assert.deepEqual(df.globalArgs.map((a) => a.line), [2, 3]);
    assert.equal(df.stages.length, 2);

    const [build, final] = df.stages as [Stage, Stage];
    assert.equal(build.index, 0);
    assert.equal(build.name, "build"); // lower-cased
    assert.equal(build.image, "${BASE}");
    assert.equal(build.platform, "$BUILDPLATFORM");
    assert.equal(build.from.line, 5);
    assert.deepEqual(build.from.flags, ["--platform=$BUILDPLATFORM"]);
    assert.deepEqual(build.instructions.map((i) => [i.keyword, i.line]), [["WORKDIR", 6], ["COPY", 7], ["RUN", 8]]);
    const copy = build.instructions[1] as CopyInstruction;
    assert.deepEqual(copy.sources, ["go.mod", "go.sum"]);
    assert.equal(copy.dest, "./");
    assert.equal(copy.chown, "1000:1000");
    assert.equal(copy.chmod, "755");
    assert.equal(copy.link, false);
    assert.deepEqual(copy.flags, ["--chown=1000:1000", "--chmod=755"]);
    assert.equal(copy.original, "COPY --chown=1000:1000 --chmod=755 go.mod go.sum ./");
    const run = build.instructions[2] as RunInstruction;
    assert.deepEqual(run.mounts, ["type=cache,target=/root/.cache"]);
    assert.deepEqual(run.command, ["go build -o /out/app ."]);
    assert.equal(run.shellForm, true);

    assert.equal(final.index, 1);
    assert.equal(final.name, undefined);
    assert.equal(final.image, "scratch");
    const copy2 = final.instructions[0] as CopyInstruction;
    assert.equal(copy2.from, "build");
    assert.equal(copy2.link, true);
    const ep = final.instructions[1] as EntrypointInstruction;
    assert.deepEqual(ep.command, ["/app"]);
    assert.equal(ep.shellForm, false);
    assert.equal(ep.json, true);
  });

  test("keywords are case-insensitive, AS too; leading whitespace is fine", () => {
    const df = parseDockerfile("  from alpine as Base\n\trun echo hi\n  # indented comment\nCopy a b\n");
    assert.equal(df.stages[0].name, "base");
    assert.deepEqual(df.stages[0].instructions.map((i) => i.keyword), ["RUN", "COPY"]);
    assert.deepEqual((df.stages[0].instructions[0] as RunInstruction).command, ["echo hi"]);
  });

  test("empty file, comments only, ARG only, instruction before FROM", () => {
    parseFails("", "file with no instructions");
    parseFails("# just a comment\n\n   \n", "file with no instructions");
    parseFails("ARG A=1\nARG B\n", "dockerfile contains no stages to build");
    parseFails("ARG A\nRUN echo hi\nFROM alpine\n", "dockerfile parse error on line 2: no build stage in current context", 2);
    parseFails("ENV A=1\nFROM x\n", /line 1: no build stage in current context/, 1);
  });

  test("unknown instruction, with a suggestion when close", () => {
    parseFails("FROM alpine\n\nFOO bar\n", "dockerfile parse error on line 3: unknown instruction: FOO", 3);
    parseFails("FROM alpine\nRUNN echo\n", "dockerfile parse error on line 2: unknown instruction: RUNN (did you mean RUN?)", 2);
    parseFails("FROM alpine\ncopy2 a b\n", /unknown instruction: COPY2 \(did you mean COPY\?\)/);
  });

  test("FROM argument errors and stage names", () => {
    parseFails("FROM\n", "dockerfile parse error on line 1: FROM requires either one or three arguments");
    parseFails("FROM alpine AS\n", /FROM requires either one or three arguments/);
    parseFails("FROM alpine foo bar\n", /FROM requires either one or three arguments/);
    parseFails("FROM alpine AS 1st\n", 'dockerfile parse error on line 1: invalid name for build stage: "1st", name can\'t start with a number or contain symbols');
    parseFails("FROM alpine AS a$b\n", /invalid name for build stage/);
    parseFails("FROM alpine AS one\nRUN x\nFROM busybox AS ONE\n", 'dockerfile parse error on line 3: duplicate stage name "one"', 3);
    const df = parseDockerfile("FROM alpine AS my-stage.v1_2\nFROM my-stage.v1_2\n");
    assert.equal(df.stages[0].name, "my-stage.v1_2");
    assert.equal(df.stages[1].image, "my-stage.v1_2");
    parseFails("FROM --platform linux/amd64 alpine\n", /missing a value on flag: platform/);
  });

  test("CRLF line endings and a UTF-8 BOM", () => {
    const df = parseDockerfile("\ufeffFROM alpine\r\nRUN echo \\\r\n  hi\r\nUSER app\r\n");
    const [run, user] = df.stages[0].instructions as [RunInstruction, Instruction];
    assert.deepEqual(run.command, ["echo   hi"]);
    assert.equal(run.line, 2);
    assert.equal(run.endLine, 3);
    assert.equal(user.line, 4);
    assert.equal((user as { user?: string }).user, "app");
  });

  test("a # after the start of a line is not a comment", () => {
    const run = first<RunInstruction>("FROM a\nRUN echo hi # not a comment\n");
    assert.deepEqual(run.command, ["echo hi # not a comment"]);
  });
});

describe("dockerfile: directives and escape", () => {
  test("escape=` with Windows paths", () => {
    const text = [
      "# escape=`",
      "",
      "FROM mcr.microsoft.com/windows/servercore",
      "COPY testfile.txt c:\\",
      "RUN dir c:\\",
      "RUN Get-ChildItem `",
      "    -Path c:\\Windows",
      "WORKDIR C:\\Users\\app",
    ].join("\n");
    const df = parseDockerfile(text);
    assert.equal(df.escapeToken, "`");
    assert.deepEqual(df.directives, { escape: "`" });
    const [copy, run1, run2, wd] = df.stages[0].instructions as [CopyInstruction, RunInstruction, RunInstruction, WorkdirInstruction];
    assert.deepEqual(copy.sources, ["testfile.txt"]);
    assert.equal(copy.dest, "c:\\");
    assert.deepEqual(run1.command, ["dir c:\\"]);
    assert.deepEqual(run2.command, ["Get-ChildItem     -Path c:\\Windows"]);
    assert.equal(run2.line, 6);
    assert.equal(run2.endLine, 7);
    assert.equal(wd.path, "C:\\Users\\app");
    assert.equal(expandString(wd.path, {}, { escapeToken: df.escapeToken }), "C:\\Users\\app");
    assert.equal(expandString(wd.path, {}), "C:Usersapp"); // what the default escape would do
  });

  test("without the directive a trailing backslash continues the line (Docker's classic pitfall)", () => {
    const df = parseDockerfile("FROM microsoft/nanoserver\nCOPY testfile.txt c:\\\nRUN dir c:\\\n");
    const instrs = df.stages[0].instructions;
    assert.equal(instrs.length, 1);
    const copy = instrs[0] as CopyInstruction;
    assert.deepEqual(copy.sources, ["testfile.txt", "c:RUN", "dir"]);
    assert.equal(copy.dest, "c:");
    assert.deepEqual([copy.line, copy.endLine], [2, 3]);
    assert.ok(df.warnings.some((w) => /end of file/.test(w.message)));
  });

  test("an escaped escape at the end of a line does not continue it", () => {
    const df = parseDockerfile("FROM a\nRUN echo foo\\\\\nRUN echo bar\n");
    const [r1, r2] = df.stages[0].instructions as [RunInstruction, RunInstruction];
    assert.deepEqual(r1.command, ["echo foo\\\\"]);
    assert.deepEqual(r2.command, ["echo bar"]);
  });

  test("directives only count at the very top, are case-insensitive, not repeatable", () => {
    const late = parseDockerfile("# a comment\n# escape=`\nFROM a\nRUN echo a `\n");
    assert.equal(late.escapeToken, "\\");
    assert.deepEqual(late.directives, {});
    assert.deepEqual((late.stages[0].instructions[0] as RunInstruction).command, ["echo a `"]);

    const afterBlank = parseDockerfile("\n# escape=`\nFROM a\n");
    assert.equal(afterBlank.escapeToken, "\\");

    const upper = parseDockerfile("#ESCAPE = `\n# Syntax=docker/dockerfile:1\n# check=skip=all\nFROM a\n");
    assert.equal(upper.escapeToken, "`");
    assert.deepEqual(upper.directives, { escape: "`", syntax: "docker/dockerfile:1", check: "skip=all" });

    parseFails("# escape=x\nFROM a\n", "dockerfile parse error on line 1: invalid escape token 'x' does not match ` or \\", 1);
    parseFails("# escape=`\n# escape=\\\nFROM a\n", "dockerfile parse error on line 2: only one escape parser directive can be used", 2);
  });

  test("unknown directive ends the directive block", () => {
    const df = parseDockerfile("# foo=bar\n# escape=`\nFROM a\n");
    assert.equal(df.escapeToken, "\\");
  });
});

describe("dockerfile: continuations and comments", () => {
  test("comment and empty lines inside a continuation are skipped; whitespace kept", () => {
    const text = ["FROM alpine", "RUN apk add \\", "# a comment inside", "    curl \\", "", "    git", "USER nobody"].join("\n");
    const df = parseDockerfile(text);
    const [run, user] = df.stages[0].instructions;
    assert.deepEqual((run as RunInstruction).command, ["apk add     curl     git"]);
    assert.deepEqual([run.line, run.endLine], [2, 6]);
    assert.equal(user.line, 7);
    assert.equal(df.warnings.length, 1);
    assert.equal(df.warnings[0].line, 2);
    assert.match(df.warnings[0].message, /^Empty continuation line found in: RUN apk add/);
  });

  test("continuation with trailing blanks after the escape", () => {
    const run = first<RunInstruction>("FROM a\nRUN echo a \\  \t\n  b\n");
    assert.deepEqual(run.command, ["echo a   b"]);
  });

  test("continuation at end of file: accepted like Docker, with a warning; empty instruction fails", () => {
    const df = parseDockerfile("FROM a\nRUN echo hi \\");
    assert.deepEqual((df.stages[0].instructions[0] as RunInstruction).command, ["echo hi"]);
    assert.equal(df.warnings.length, 1);
    parseFails("FROM a\nRUN \\\n", "dockerfile parse error on line 2: RUN requires at least one argument", 2);
    parseFails("FROM a\nRUN \\\n# only a comment\n", /line 2: RUN requires at least one argument/);
  });

  test("a lone escape on its own line continues", () => {
    const run = first<RunInstruction>("FROM a\nRUN echo a \\\n\\\n b\n");
    assert.deepEqual(run.command, ["echo a  b"]);
  });
});

describe("dockerfile: heredocs", () => {
  const text = [
    "FROM alpine", // 1
    "RUN <<EOF", // 2
    "echo hello", // 3
    "# not a comment, part of the script",
    "echo $HOME",
    "EOF", // 6
    "COPY <<-EOT /etc/motd", // 7
    "\tWelcome",
    "\t  to berth",
    "\tEOT", // 10
    'COPY <<"RAW" <<CONF /dst/', // 11
    "$NOT_EXPANDED",
    "RAW",
    "key=$VALUE",
    "CONF", // 15
    "RUN python3 <<'PY'", // 16
    'print("hi")',
    "PY",
    "RUN 3<<FD cat /dev/fd/3", // 19
    "x",
    "FD",
    'RUN ["<<NOTAHEREDOC"]', // 22
    'RUN echo "<<NOPE"', // 23
    "USER app", // 24
  ].join("\n");

  test("RUN heredoc keeps the body verbatim", () => {
    const instrs = only(text);
    const run = instrs[0] as RunInstruction;
    assert.deepEqual(run.command, ["<<EOF"]);
    assert.deepEqual(run.heredocs, [
      { name: "EOF", fd: 0, expand: true, chomp: false, content: "echo hello\n# not a comment, part of the script\necho $HOME\n" },
    ]);
    assert.deepEqual([run.line, run.endLine], [2, 6]);
  });

  test("COPY <<- strips leading tabs (also before the terminator)", () => {
    const copy = only(text)[1] as CopyInstruction;
    assert.deepEqual(copy.sources, []);
    assert.equal(copy.dest, "/etc/motd");
    assert.equal(copy.heredocs[0].content, "\tWelcome\n\t  to berth\n");
    assert.equal(heredocData(copy.heredocs[0]), "Welcome\n  to berth\n");
    assert.deepEqual(copy.contents, [{ path: "EOT", data: "Welcome\n  to berth\n", expand: true }]);
    assert.deepEqual([copy.line, copy.endLine], [7, 10]);
  });

  test("several heredocs on one line; a quoted delimiter disables expansion", () => {
    const copy = only(text)[2] as CopyInstruction;
    assert.deepEqual(copy.contents, [
      { path: "RAW", data: "$NOT_EXPANDED\n", expand: false },
      { path: "CONF", data: "key=$VALUE\n", expand: true },
    ]);
    assert.equal(copy.dest, "/dst/");
    assert.equal(expandHeredoc(copy.contents[1].data, { VALUE: "42" }), "key=42\n");
  });

  test("heredoc with a command, fd prefix, JSON and quoted forms", () => {
    const instrs = only(text);
    const py = instrs[3] as RunInstruction;
    assert.deepEqual(py.command, ["python3 <<'PY'"]);
    assert.deepEqual(py.heredocs.map((h) => [h.name, h.expand, h.content]), [["PY", false, 'print("hi")\n']]);
    const fd = instrs[4] as RunInstruction;
    assert.deepEqual(fd.heredocs.map((h) => [h.name, h.fd]), [["FD", 3]]);
    const json = instrs[5] as RunInstruction;
    assert.equal(json.json, true);
    assert.deepEqual(json.heredocs, []);
    assert.equal(json.line, 22);
    const quoted = instrs[6] as RunInstruction;
    assert.deepEqual(quoted.heredocs, []);
    assert.equal(instrs[7].line, 24);
  });

  test("heredoc delimiters: partial quotes, escaped quotes, space after <<", () => {
    const cases: [string, string, string, boolean][] = [
      ["RUN <<eo'f'", "eof", "eof", false],
      ["RUN <<eo\\'f", "eo'f", "eo'f", true],
      ["RUN <<'one two'", "one two", "one two", false],
      ["RUN <<  EOF", "EOF", "EOF", true],
    ];
    for (const [line, name, term, exp] of cases) {
      const run = first<RunInstruction>(`FROM a\n${line}\nbody\n${term}\nUSER x\n`);
      assert.deepEqual(run.heredocs.map((h) => [h.name, h.expand, h.content]), [[name, exp, "body\n"]], line);
    }
  });

  test("unterminated heredoc, heredoc as destination", () => {
    parseFails("FROM a\nRUN <<EOF\necho hi\n", "dockerfile parse error on line 2: unterminated heredoc", 2);
    parseFails("FROM a\nCOPY a <<EOF\nx\nEOF\n", /COPY cannot accept a heredoc as a destination/);
  });

  test("heredocs are not looked for in other instructions", () => {
    // the body line is read as the next instruction, as in BuildKit
    parseFails("FROM a\nUSER <<INVALID\nINVALID\n", "dockerfile parse error on line 3: unknown instruction: INVALID", 3);
  });

  test("ONBUILD with a heredoc stores it in the expression, and triggers parse back", () => {
    const ob = first<OnbuildInstruction>("FROM a\nONBUILD RUN <<EOF\necho x\nEOF\n");
    assert.equal(ob.trigger, "RUN");
    assert.equal(ob.expression, "RUN <<EOF\necho x\nEOF");
    const [run] = parseOnbuildTriggers([ob.expression]) as [RunInstruction];
    assert.equal(run.keyword, "RUN");
    assert.deepEqual(run.heredocs.map((h) => h.content), ["echo x\n"]);
  });
});

describe("dockerfile: JSON (exec) form vs shell form", () => {
  test("valid JSON array of strings is exec form", () => {
    const [cmd, ep, empty] = only('FROM a\nCMD ["echo", "hi there"]\nENTRYPOINT [ "/bin/sh" , "-c" ]\nCMD []\n') as [
      CmdInstruction, EntrypointInstruction, CmdInstruction,
    ];
    assert.deepEqual([cmd.command, cmd.shellForm, cmd.json], [["echo", "hi there"], false, true]);
    assert.deepEqual(ep.command, ["/bin/sh", "-c"]);
    assert.deepEqual([empty.command, empty.shellForm], [[], false]);
    parseFails("FROM a\nRUN []\n", /RUN requires at least one argument/);
  });

  test("invalid JSON falls back to shell form", () => {
    const [c1, c2, c3] = only(`FROM a\nCMD ['echo', 'hi']\nRUN ["echo", "unterminated\nCMD [echo]\n`) as CmdInstruction[];
    assert.deepEqual([c1.command, c1.shellForm], [["['echo', 'hi']"], true]);
    assert.deepEqual(c2.command, ['["echo", "unterminated']);
    assert.deepEqual(c3.command, ["[echo]"]);
  });

  test("a JSON array with a non-string is an error", () => {
    parseFails('FROM a\nCMD ["echo", 1]\n', "dockerfile parse error on line 2: when using JSON array syntax, arrays must be comprised of strings only");
    parseFails('FROM a\nCOPY ["a", null, "/b"]\n', /arrays must be comprised of strings only/);
  });

  test("CMD and ENTRYPOINT may be empty, SHELL needs JSON", () => {
    const [cmd] = only("FROM a\nCMD\n") as [CmdInstruction];
    assert.deepEqual([cmd.command, cmd.shellForm], [[], true]);
    const [sh] = only('FROM a\nSHELL ["powershell", "-command"]\n') as [ShellInstruction];
    assert.deepEqual(sh.shell, ["powershell", "-command"]);
    parseFails("FROM a\nSHELL /bin/bash -c\n", "dockerfile parse error on line 2: SHELL requires the arguments to be in JSON form");
    parseFails("FROM a\nSHELL []\n", /SHELL requires at least one argument/);
  });

  test("COPY/ADD/VOLUME: JSON for paths with spaces, otherwise split on whitespace", () => {
    const [c1, c2, v1, v2] = only(
      'FROM a\nCOPY ["my file.txt", "other file", "/dest dir/"]\nCOPY a   b\t/c/\nVOLUME ["/data one", "/logs"]\nVOLUME /a /b\n',
    ) as [CopyInstruction, CopyInstruction, VolumeInstruction, VolumeInstruction];
    assert.deepEqual([c1.sources, c1.dest, c1.json], [["my file.txt", "other file"], "/dest dir/", true]);
    assert.deepEqual([c2.sources, c2.dest], [["a", "b"], "/c/"]);
    assert.deepEqual(v1.volumes, ["/data one", "/logs"]);
    assert.deepEqual(v2.volumes, ["/a", "/b"]);
    parseFails('FROM a\nVOLUME [" "]\n', /VOLUME specified can not be an empty string/);
    parseFails("FROM a\nVOLUME []\n", /VOLUME requires at least one argument/);
  });
});

describe("dockerfile: ENV, ARG, LABEL", () => {
  test("ENV key=value pairs keep quotes/escapes for the expander", () => {
    const env = first<EnvInstruction>('FROM a\nENV A=1 B="two words" C=Rex\\ The\\ Dog D=\'$lit\' E=\n');
    assert.deepEqual(env.pairs, [
      { key: "A", value: "1" },
      { key: "B", value: '"two words"' },
      { key: "C", value: "Rex\\ The\\ Dog" },
      { key: "D", value: "'$lit'" },
      { key: "E", value: "" },
    ]);
    const vals = env.pairs.map((p) => expandString(p.value, { lit: "no" }));
    assert.deepEqual(vals, ["1", "two words", "Rex The Dog", "$lit", ""]);
  });

  test("legacy ENV key value (value is the rest of the line)", () => {
    const env = first<EnvInstruction>("FROM a\nENV MY_NAME John  Doe\n");
    assert.deepEqual(env.pairs, [{ key: "MY_NAME", value: "John  Doe" }]);
    const quoted = first<EnvInstruction>('FROM a\nENV PATH "/x y:$PATH"\n');
    assert.equal(expandString(quoted.pairs[0].value, { PATH: "/bin" }), "/x y:/bin");
  });

  test("ENV errors", () => {
    parseFails("FROM a\nENV ONLYKEY\n", "dockerfile parse error on line 2: ENV must have two arguments");
    parseFails("FROM a\nENV a=1 b\n", 'dockerfile parse error on line 2: Syntax error - can\'t find = in "b". Must be of the form: name=value');
    parseFails("FROM a\nENV =x\n", /ENV names can not be blank/);
    parseFails("FROM a\nENV\n", /ENV requires at least one argument/);
    parseFails("FROM a\nENV --foo=bar A=b\n", /unknown flag: foo/);
  });

  test("ARG: several, with and without defaults", () => {
    const arg = first<ArgInstruction>('FROM a\nARG A B=2 C="x y" D=${B}-suffix\n');
    assert.deepEqual(arg.vars, [
      { key: "A", value: undefined },
      { key: "B", value: "2" },
      { key: "C", value: '"x y"' },
      { key: "D", value: "${B}-suffix" },
    ]);
    parseFails("FROM a\nARG =x\n", /ARG names can not be blank/);
    parseFails("FROM a\nARG\n", /ARG requires at least one argument/);
  });

  test("LABEL with quoted keys and values, and legacy form", () => {
    const [l1, l2] = only('FROM a\nLABEL "com.example.vendor"="ACME Inc" version=1.0 multi="a \\\n  b"\nLABEL description This text\n') as LabelInstruction[];
    assert.deepEqual(
      l1.pairs.map((p) => [expandString(p.key, {}), expandString(p.value, {})]),
      [["com.example.vendor", "ACME Inc"], ["version", "1.0"], ["multi", "a   b"]],
    );
    assert.deepEqual(l2.pairs, [{ key: "description", value: "This text" }]);
    parseFails("FROM a\nLABEL nokey\n", /LABEL must have two arguments/);
  });
});

describe("dockerfile: COPY, ADD, flags", () => {
  test("COPY flags: --from --chown --chmod --link --parents --exclude", () => {
    const copy = first<CopyInstruction>(
      'FROM a\nCOPY --from=builder --chown="app user" --chmod=0644 --link --parents --exclude=*.tmp --exclude=.git ./src/ /app/\n',
    );
    assert.equal(copy.from, "builder");
    assert.equal(copy.chown, "app user");
    assert.equal(copy.chmod, "0644");
    assert.equal(copy.link, true);
    assert.equal(copy.parents, true);
    assert.deepEqual(copy.excludes, ["*.tmp", ".git"]);
    assert.deepEqual(copy.sources, ["./src/"]);
    const off = first<CopyInstruction>("FROM a\nCOPY --link=false a b\n");
    assert.equal(off.link, false);
  });

  test("ADD flags", () => {
    const add = first<AddInstruction>(
      "FROM a\nADD --checksum=sha256:abc --keep-git-dir=true --unpack=false --chmod=755 https://x/y.tgz git@github.com:a/b.git /opt/\n",
    );
    assert.equal(add.checksum, "sha256:abc");
    assert.equal(add.keepGitDir, true);
    assert.equal(add.unpack, false);
    assert.equal(add.chmod, "755");
    assert.deepEqual(add.sources, ["https://x/y.tgz", "git@github.com:a/b.git"]);
    assert.equal(first<AddInstruction>("FROM a\nADD a b\n").unpack, undefined);
    parseFails("FROM a\nADD --from=x a b\n", /unknown flag: from/);
  });

  test("COPY needs a destination", () => {
    parseFails(
      "FROM a\nCOPY onlyone\n",
      "dockerfile parse error on line 2: COPY requires at least two arguments, but only one was provided. Destination could not be determined",
    );
    parseFails("FROM a\nADD x\n", /ADD requires at least two arguments/);
    parseFails('FROM a\nCOPY ["x"]\n', /COPY requires at least two arguments/);
  });

  test("malformed flags", () => {
    parseFails("FROM a\nCOPY --xyz=1 a b\n", "dockerfile parse error on line 2: unknown flag: xyz", 2);
    parseFails("FROM a\nCOPY --from a b\n", /missing a value on flag: from/);
    parseFails("FROM a\nCOPY --link=maybe a b\n", /expecting boolean value for flag link, not: maybe/);
    parseFails("FROM a\nCOPY --link= a b\n", /missing a value on flag: link/);
    parseFails("FROM a\nCOPY --chown=a --chown=b x y\n", /duplicate flag specified: chown/);
    parseFails("FROM a\nWORKDIR --x=1 /a\n", /unknown flag: x/);
    parseFails("FROM a\nCMD --help\n", /unknown flag: help/); // as in Docker: leading --words are flags
  });

  test("a lone -- ends the flags", () => {
    const copy = first<CopyInstruction>("FROM a\nCOPY --link -- --weird-name /dst\n");
    assert.equal(copy.link, true);
    assert.deepEqual(copy.sources, ["--weird-name"]);
  });
});

describe("dockerfile: RUN flags and mounts", () => {
  test("--mount, --network, --security kept and validated", () => {
    const run = first<RunInstruction>(
      "FROM a\nRUN --mount=type=cache,target=/root/.cache,sharing=locked --mount=type=secret,id=tok,env=TOKEN --network=none --security=insecure make\n",
    );
    assert.deepEqual(run.mounts, ["type=cache,target=/root/.cache,sharing=locked", "type=secret,id=tok,env=TOKEN"]);
    assert.equal(run.network, "none");
    assert.equal(run.security, "insecure");
    assert.deepEqual(run.command, ["make"]);
    const def = first<RunInstruction>("FROM a\nRUN true\n");
    assert.deepEqual([def.network, def.security, def.mounts], ["default", "sandbox", []]);
  });

  test("parseRunMount: defaults, read-only rules, expansion", () => {
    assert.deepEqual(parseRunMount("type=cache,target=/root/.cache,sharing=locked,mode=0755,uid=1000"), {
      type: "cache", target: "/root/.cache", sharing: "locked", mode: 0o755, uid: 1000, readOnly: false, required: false,
    });
    const bind = parseRunMount("target=/src,source=.,from=build");
    assert.deepEqual([bind.type, bind.readOnly, bind.from, bind.source], ["bind", true, "build", "."]);
    assert.equal(parseRunMount("type=bind,target=/x,rw").readOnly, false);
    assert.equal(parseRunMount("type=bind,target=/x,readwrite=true").readOnly, false);
    assert.equal(parseRunMount("type=tmpfs,target=/t,size=64m").size, 64 * 1024 * 1024);
    const secret = parseRunMount("type=secret,id=npm,required");
    assert.deepEqual([secret.type, secret.id, secret.required, secret.readOnly], ["secret", "npm", true, true]);
    assert.equal(parseRunMount('"type=bind","target=/a,b"').target, "/a,b");
    const vars: Record<string, string> = { DIR: "/cache/go" };
    assert.equal(parseRunMount("type=cache,target=$DIR", (v) => expandString(v, vars)).target, "/cache/go");
  });

  test("mount errors", () => {
    const bad = (spec: string, msg: RegExp) => assert.throws(() => parseRunMount(spec), msg);
    bad("type=bogus,target=/x", /unsupported mount type "bogus"/);
    bad("type=bind,target=/x,mode=0755", /mode not allowed for "bind" type mounts/);
    bad("type=bind,target=/x,sharing=shared", /invalid cache sharing set for bind mount/);
    bad("type=secret", /invalid secret mount/);
    bad("type=cache,target=/x,nope=1", /unexpected key 'nope' in 'nope=1'/);
    bad("type=cache,target=/x,bogus", /invalid field 'bogus' must be a key=value pair/);
    bad("type=bind,target=/x,required", /unexpected key 'required' for mount type 'bind'/);
    bad("type=cache,target=/x,uid=abc", /invalid value abc for uid/);
    parseFails("FROM a\nRUN --mount=type=bogus,target=/x true\n", /line 2: unsupported mount type "bogus"/);
    parseFails("FROM a\nRUN --mount=from=$IMG,target=/x true\n", /'from' doesn't support variable expansion/);
    parseFails("FROM a\nRUN --network=bogus true\n", /invalid network mode "bogus"/);
    parseFails("FROM a\nRUN --security=x true\n", /security "x" is not valid/);
    // variables elsewhere are left for the executor
    assert.deepEqual(first<RunInstruction>("FROM a\nRUN --mount=type=cache,target=$D true\n").mounts, ["type=cache,target=$D"]);
  });
});

describe("dockerfile: other instructions", () => {
  test("HEALTHCHECK with all options", () => {
    const hc = first<HealthcheckInstruction>(
      "FROM a\nHEALTHCHECK --interval=30s --timeout=3s --start-period=1m --start-interval=500ms --retries=3 CMD curl -f http://localhost/ || exit 1\n",
    );
    assert.deepEqual(hc.health, {
      test: ["CMD-SHELL", "curl -f http://localhost/ || exit 1"],
      interval: 30e9, timeout: 3e9, startPeriod: 60e9, startInterval: 5e8, retries: 3,
    });
    assert.deepEqual(first<HealthcheckInstruction>('FROM a\nHEALTHCHECK CMD ["curl", "-f", "x"]\n').health, { test: ["CMD", "curl", "-f", "x"] });
    assert.deepEqual(first<HealthcheckInstruction>("FROM a\nhealthcheck none\n").health, { test: ["NONE"] });
  });

  test("HEALTHCHECK errors", () => {
    parseFails("FROM a\nHEALTHCHECK NONE x\n", /HEALTHCHECK NONE takes no arguments/);
    parseFails("FROM a\nHEALTHCHECK FOO x\n", /Unknown type "FOO" in HEALTHCHECK \(try CMD\)/);
    parseFails("FROM a\nHEALTHCHECK CMD\n", /Missing command after HEALTHCHECK CMD/);
    parseFails("FROM a\nHEALTHCHECK --interval=10 CMD x\n", /time: missing unit in duration "10"/);
    parseFails("FROM a\nHEALTHCHECK --interval=1us CMD x\n", /Interval "interval" cannot be less than 1ms/);
    parseFails("FROM a\nHEALTHCHECK --retries=-1 CMD x\n", /--retries cannot be negative \(-1\)/);
    parseFails("FROM a\nHEALTHCHECK --bogus=1 CMD x\n", /unknown flag: bogus/);
    parseFails("FROM a\nHEALTHCHECK\n", /HEALTHCHECK requires at least one argument/);
  });

  test("Go durations", () => {
    assert.equal(parseGoDuration("1h2m3.5s"), 3723.5e9);
    assert.equal(parseGoDuration("0"), 0);
    assert.equal(parseGoDuration("1.5ms"), 1.5e6);
    assert.equal(parseGoDuration("10µs"), 10e3);
    assert.throws(() => parseGoDuration("abc"), /invalid duration/);
    assert.throws(() => parseGoDuration("5x"), /unknown unit "x"/);
  });

  test("ONBUILD", () => {
    const ob = first<OnbuildInstruction>("FROM a\nONBUILD COPY --chown=1 . /app/src\n");
    assert.equal(ob.trigger, "COPY");
    assert.equal(ob.expression, "COPY --chown=1 . /app/src");
    assert.deepEqual(ob.args, ["COPY", ".", "/app/src"]);
    parseFails("FROM a\nONBUILD ONBUILD RUN x\n", /Chaining ONBUILD via `ONBUILD ONBUILD` isn't allowed/);
    parseFails("FROM a\nONBUILD FROM x\n", /FROM isn't allowed as an ONBUILD trigger/);
    parseFails("FROM a\nONBUILD MAINTAINER x\n", /MAINTAINER isn't allowed as an ONBUILD trigger/);
    parseFails("FROM a\nONBUILD\n", /ONBUILD requires at least one argument/);
    const trig = parseOnbuildTriggers(["RUN echo hi", "ENV A=b"]);
    assert.deepEqual(trig.map((i) => i.keyword), ["RUN", "ENV"]);
  });

  test("WORKDIR, USER, STOPSIGNAL, MAINTAINER, EXPOSE take the whole rest", () => {
    const [wd, user, sig, mt, ex] = only(
      "FROM a\nWORKDIR /path with space/$X\nUSER app:app\nSTOPSIGNAL SIGKILL\nMAINTAINER Jane Doe <j@d.io>\nEXPOSE 80/tcp 443 ${PORTS}\n",
    ) as [WorkdirInstruction, Instruction, Instruction, Instruction, ExposeInstruction];
    assert.equal(wd.path, "/path with space/$X");
    assert.equal((user as { user?: string }).user, "app:app");
    assert.equal((sig as { signal?: string }).signal, "SIGKILL");
    assert.equal((mt as { maintainer?: string }).maintainer, "Jane Doe <j@d.io>");
    assert.deepEqual(ex.ports, ["80/tcp", "443", "${PORTS}"]);
    // EXPOSE is the one instruction whose expansion splits words
    assert.deepEqual(ex.ports.flatMap((p) => processWords(p, { PORTS: "8080 9090/udp" })), ["80/tcp", "443", "8080", "9090/udp"]);
    parseFails("FROM a\nWORKDIR\n", /WORKDIR requires exactly one argument/);
    parseFails("FROM a\nEXPOSE\n", /EXPOSE requires at least one argument/);
  });

  test("error snippet in Docker's format", () => {
    const text = "FROM alpine\n\nFOO bar\nRUN x\n";
    let err: DockerfileParseError | undefined;
    try {
      parseDockerfile(text);
    } catch (e) {
      err = e as DockerfileParseError;
    }
    assert.ok(err);
    assert.equal(err.line, 3);
    assert.equal(err.detail, "unknown instruction: FOO");
    assert.equal(
      formatErrorSnippet(text, err.line, err.endLine),
      [
        "Dockerfile:3", "--------------------",
        "   1 |     FROM alpine", "   2 |     ", "   3 | >>> FOO bar", "   4 |     RUN x", "   5 |     ",
        "--------------------", "",
      ].join("\n"),
    );
    // a multi-line instruction gets one line of context each side
    const long = "FROM a\nRUN one \\\n  two\nUSER x\nUSER y\n";
    assert.equal(
      formatErrorSnippet(long, 2, 3),
      ["Dockerfile:2", "--------------------", "   1 |     FROM a", "   2 | >>> RUN one \\", "   3 | >>>   two", "   4 |     USER x",
        "--------------------", ""].join("\n"),
    );
  });
});

describe("expand", () => {
  const env = { PWD: "/home", SHELL: "bash", NULL: "", KOREAN: "한국어" };
  const cases: [string, string][] = [
    ["hello", "hello"],
    ["he'll'o", "hello"],
    ["he\\'llo", "he'llo"],
    ["abc\\tdef", "abctdef"],
    ['"abc\\tdef"', "abc\\tdef"],
    ['"abc\\\\tdef"', "abc\\tdef"],
    ["'abc\\tdef'", "abc\\tdef"],
    ["hello\\", "hello"],
    ["hello\\\\", "hello\\"],
    ['"hel\'lo"', "hel'lo"],
    ["'hello\\'", "hello\\"],
    ['"\'\'"', "''"],
    ["$.", "$."],
    ["he$1x", "hex"],
    ["he$PWD", "he/home"],
    ["he\\$PWD", "he$PWD"],
    ["he\\\\$PWD", "he\\/home"],
    ['"he\\$PWD"', "he$PWD"],
    ["'he\\$PWD'", "he\\$PWD"],
    ["\\${}", "${}"],
    ["he${hi}xx", "hexx"],
    ["he${PWD}", "he/home"],
    ["he${XXX:-000}xx", "he000xx"],
    ["he${PWD:-000}xx", "he/homexx"],
    ["he${XXX:-$PWD}xx", "he/homexx"],
    ["he${XXX:-${PWD:-yyy}}xx", "he/homexx"],
    ["he${XXX:-${YYY:-yyy}}xx", "heyyyxx"],
    ["he${NULL:-d}", "hed"],
    ["he${NULL-d}", "he"],
    ["he${XXX-d}", "hed"],
    ["he${PWD?}", "he/home"],
    ["he${NULL?}", "he"],
    ["he${XXX:+${PWD}}xx", "hexx"],
    ["he${PWD:+${SHELL}}xx", "hebashxx"],
    ["he${NULL:+x}", "he"],
    ["he${NULL+x}", "hex"],
    ["'he${XX}'", "he${XX}"],
    ['"he\'$PWD\'"', "he'/home'"],
    ["he${PWD:+${PWD}:}xx", "he/home:xx"],
    ["he${XXX:-\\$PWD:}xx", "he$PWD:xx"],
    ["he${XXX:-\\${PWD}z}xx", "he${PWDz}xx"],
    ["안'녕'하세요", "안녕하세요"],
    ["${KOREAN}!", "한국어!"],
  ];
  for (const [input, want] of cases) {
    test(`expandString ${input}`, () => assert.equal(expandString(input, env), want));
  }

  const errors: [string, RegExp][] = [
    ["he'llo", /unexpected end of statement while looking for matching single-quote/],
    ['"hello', /matching double-quote/],
    ["${}", /bad substitution/],
    ["he${PWD", /missing '}'/],
    ["he${.}", /unsupported modifier \(\.\) in substitution/],
    ["he${XXX:YYY}", /unsupported modifier \(:Y\)/],
    ["he${PWD:=000}xx", /unsupported modifier/],
    ["he${XXX?}", /^failed to process "he\$\{XXX\?\}": XXX: is not allowed to be unset$/],
    ["he${NULL:?}", /NULL: is not allowed to be empty/],
    ["${XXX:?you must set XXX}", /XXX: you must set XXX/],
  ];
  for (const [input, re] of errors) {
    test(`expandString error ${input}`, () =>
      assert.throws(() => expandString(input, env), (e: unknown) => e instanceof BadParameterError && re.test(e.message)));
  }

  test("processWords splits after substitution, only outside quotes", () => {
    const vars = ["space=abc  def", "leading=  ab c", "trailing=ab c   ", "withtab=ab\tc"];
    const w = (s: string) => processWords(s, vars);
    assert.deepEqual(w("hello${space}bye"), ["helloabc", "defbye"]);
    assert.deepEqual(w('hello"${space}"bye'), ["helloabc  defbye"]);
    assert.deepEqual(w('hello "${space}"bye'), ["hello", "abc  defbye"]);
    assert.deepEqual(w("hello${leading}def"), ["hello", "ab", "cdef"]);
    assert.deepEqual(w('hello"${leading}" def'), ["hello  ab c", "def"]);
    assert.deepEqual(w("hello${trailing}d"), ["helloab", "c", "d"]);
    assert.deepEqual(w('hello"${withtab}"d'), ["helloab\tcd"]);
    assert.deepEqual(w("  a   b  "), ["a", "b"]);
    assert.deepEqual(w('a "" b'), ["a", "b"]);
    assert.deepEqual(w("a\\ b c"), ["a b", "c"]);
  });

  test("nesting ${A:-${B}} and the backtick escape", () => {
    assert.equal(expandString("${A:-${B}}", { B: "b" }), "b");
    assert.equal(expandString("${A:-${B:-${C:-deep}}}", {}), "deep");
    assert.equal(expandString("${A:-x}", { A: "a" }), "a");
    assert.equal(expandString("C:\\Windows\\$A", { A: "x" }, { escapeToken: "`" }), "C:\\Windows\\x");
    assert.equal(expandString("`$A `\"q`\"", { A: "x" }, { escapeToken: "`" }), '$A "q"');
    assert.equal(expandString('"a`"b"', {}, { escapeToken: "`" }), 'a"b');
  });

  test("pattern forms", () => {
    const F = { F: "/usr/local/bin/app.tar.gz" };
    assert.equal(expandString("${F##*/}", F), "app.tar.gz");
    assert.equal(expandString("${F#*/}", F), "usr/local/bin/app.tar.gz");
    assert.equal(expandString("${F%/*}", F), "/usr/local/bin");
    assert.equal(expandString("${F%%.*}", F), "/usr/local/bin/app");
    assert.equal(expandString("${F%.*}", F), "/usr/local/bin/app.tar");
    assert.equal(expandString("${F#/usr}", F), "/local/bin/app.tar.gz");
    assert.equal(expandString("${F/local/share}", F), "/usr/share/bin/app.tar.gz");
    assert.equal(expandString("${F//\\//:}", F), ":usr:local:bin:app.tar.gz");
    assert.equal(expandString("${F/?usr/}", F), "/local/bin/app.tar.gz");
    assert.equal(expandString("${FOO#?\\?}", { FOO: "???y" }), "?y");
    assert.equal(expandString("${FOO%%\\**\\*}", { FOO: "a***yy*" }), "a");
    assert.equal(
      expandString("something-${V}.${OS}-${ARCH}${VARIANT:+-${VARIANT}}.tar.gz", { V: "v1", OS: "linux", ARCH: "arm", VARIANT: "v7" }),
      "something-v1.linux-arm-v7.tar.gz",
    );
    assert.throws(() => expandString("${F#\\x}", F), /invalid escape/);
  });

  test("lookup sources: function, Map, record, KEY=value list", () => {
    const calls: string[] = [];
    const fn = (n: string) => {
      calls.push(n);
      return n === "A" ? "fa" : undefined;
    };
    assert.equal(expandString("$A-$B", fn), "fa-");
    assert.deepEqual(calls, ["A", "B"]);
    assert.equal(expandString("$A", new Map([["A", "m"]])), "m");
    assert.equal(expandString("$A", { A: "r" }), "r");
    assert.equal(expandString("[$constructor]", {}), "[]");
    assert.equal(expandString("$A/$B", ["A=1", "A=2", "B"]), "2/");
  });

  test("matched / unmatched names and skipUnset", () => {
    const r = expand("${FOO-aaa} ${BAR-bbb} ${BAZ-ccc}", { FOO: "xxx", BAR: "" });
    assert.equal(r.value, "xxx  ccc");
    assert.deepEqual([...r.matched].sort(), ["BAR", "FOO"]);
    assert.deepEqual([...r.unmatched], ["BAZ"]);
    assert.equal(expandString("$A ${B} ${C:-x} ${D/a/b}", {}, { skipUnset: true }), "$A ${B} ${C:-x} ${D/a/b}");
    assert.equal(expandString("$A ${B}", { A: "1" }, { skipUnset: true }), "1 ${B}");
  });

  test("heredoc bodies: variables and escapes, quotes kept", () => {
    assert.equal(expandHeredoc("echo \"$A\" '$A' \\$B ${C:-c}\n", { A: "1" }), "echo \"1\" '1' $B c\n");
  });

  test("EXPANSION documents Docker's list", () => {
    assert.equal(EXPANSION.EXPOSE, "words");
    for (const k of ["ADD", "COPY", "ENV", "FROM", "LABEL", "STOPSIGNAL", "USER", "VOLUME", "WORKDIR", "ARG"]) assert.equal(EXPANSION[k], "word", k);
    for (const k of ["RUN", "CMD", "ENTRYPOINT", "SHELL", "ONBUILD", "HEALTHCHECK", "MAINTAINER"]) assert.equal(EXPANSION[k], "none", k);
  });
});

describe("dockerignore", () => {
  test("file format: comments, blanks, exceptions, cleaning", () => {
    const text = "\ufeff# comment\n\n  *.log  \n!important.log\n/abs/path\n./rel\ndir/\na/../b\n # not a comment\n! spaced\r\n**/tmp/**\n";
    assert.deepEqual(parseDockerignore(text), ["*.log", "!important.log", "abs/path", "rel", "dir", "b", "# not a comment", "!spaced", "**/tmp/**"]);
    assert.equal(cleanPath("a//b/./c/.."), "a/b");
    assert.equal(cleanPath("/"), "/");
    assert.equal(cleanPath("../x"), "../x");
  });

  test("**/*.log with !important.log", () => {
    const di = DockerIgnore.parse("**/*.log\n!important.log\n");
    assert.equal(di.isIgnored("debug.log"), true);
    assert.equal(di.isIgnored("a/b/c.log"), true);
    assert.equal(di.isIgnored("important.log"), false);
    assert.equal(di.isIgnored("sub/important.log"), true); // exception is anchored at the root
    assert.equal(di.isIgnored("debug.log.txt"), false);
    assert.equal(di.isIgnored("src/main.go"), false);
  });

  test("*.log only matches at the top level", () => {
    const di = DockerIgnore.parse("*.log\n");
    assert.equal(di.isIgnored("a.log"), true);
    assert.equal(di.isIgnored("sub/a.log"), false);
  });

  test("dir/ and dir behave the same (no directory-only patterns in Docker)", () => {
    for (const pat of ["dir/", "dir", "/dir", "./dir/"]) {
      const di = DockerIgnore.parse(pat + "\n");
      assert.equal(di.isIgnored("dir", true), true, pat);
      assert.equal(di.isIgnored("dir", false), true, pat);
      assert.equal(di.isIgnored("dir/file"), true, pat);
      assert.equal(di.isIgnored("dir/a/b/c"), true, pat);
      assert.equal(di.isIgnored("dir2"), false, pat);
      assert.equal(di.isIgnored("other/dir"), false, pat);
    }
  });

  test("exceptions inside an excluded directory, and when a walker may skip", () => {
    const di = DockerIgnore.parse("dir\n!dir/keep.txt\nnode_modules\n");
    assert.equal(di.hasExceptions, true);
    assert.equal(di.isIgnored("dir"), true);
    assert.equal(di.isIgnored("dir/keep.txt"), false);
    assert.equal(di.isIgnored("dir/other"), true);
    assert.equal(di.mayReinclude("dir"), true);
    assert.equal(di.canSkipDir("dir"), false);
    assert.equal(di.mayReinclude("dir/sub"), false);
    assert.equal(di.canSkipDir("dir/sub"), true);
    assert.equal(di.canSkipDir("node_modules"), true);
    assert.equal(di.canSkipDir("src"), false); // not ignored at all
  });

  test("wildcard exceptions make skipping unsafe everywhere", () => {
    const di = DockerIgnore.parse("vendor\n!**/*.md\n");
    assert.equal(di.mayReinclude("vendor"), true);
    assert.equal(di.canSkipDir("vendor"), false);
    assert.equal(di.isIgnored("vendor/README.md"), false);
    assert.equal(di.isIgnored("vendor/x.go"), true);
    const none = DockerIgnore.parse("vendor\n");
    assert.equal(none.mayReinclude("vendor"), false);
    assert.equal(none.canSkipDir("vendor"), true);
  });

  test("last matching line wins", () => {
    const di = DockerIgnore.parse("*.md\n!README*.md\nREADME-secret.md\n");
    assert.equal(di.isIgnored("CHANGES.md"), true);
    assert.equal(di.isIgnored("README.md"), false);
    assert.equal(di.isIgnored("README-secret.md"), true);
  });

  test("** forms, ? and classes", () => {
    const di = new DockerIgnore(["foo/**", "**/cache", "file?.txt", "[ab].bin", "x/*/y"]);
    assert.equal(di.isIgnored("foo"), false);
    assert.equal(di.isIgnored("foo/x/y"), true);
    assert.equal(di.isIgnored("cache"), true);
    assert.equal(di.isIgnored("a/b/cache/file"), true);
    assert.equal(di.isIgnored("a/notcache"), false);
    assert.equal(di.isIgnored("file1.txt"), true);
    assert.equal(di.isIgnored("file10.txt"), false);
    assert.equal(di.isIgnored("a.bin"), true);
    assert.equal(di.isIgnored("c.bin"), false);
    assert.equal(di.isIgnored("x/q/y"), true);
    assert.equal(di.isIgnored("x/q/r/y"), false);
    assert.equal(new DockerIgnore(["**"]).isIgnored("any/thing"), true);
    assert.equal(new DockerIgnore(["a.b+c(d)"]).isIgnored("a.b+c(d)"), true);
    assert.equal(new DockerIgnore(["a.b"]).isIgnored("axb"), false);
  });

  test("Dockerfile and .dockerignore are matched like any file (the caller decides)", () => {
    const di = DockerIgnore.parse("Dockerfile\n.dockerignore\n");
    assert.equal(di.isIgnored("Dockerfile"), true);
    assert.equal(di.isIgnored(".dockerignore"), true);
  });

  test("root is never ignored; bad patterns are errors", () => {
    const di = DockerIgnore.parse("*\n");
    assert.equal(di.isIgnored("."), false);
    assert.equal(di.isIgnored(""), false);
    assert.equal(di.isIgnored("anything"), true);
    assert.throws(() => DockerIgnore.parse("[\n"), /syntax error in pattern/);
    assert.throws(() => DockerIgnore.parse("a[]\n"), /syntax error in pattern/);
    assert.throws(() => new DockerIgnore(["!"]), /illegal exclusion pattern: "!"/);
    assert.throws(() => DockerIgnore.parse("!\n"), /illegal exclusion pattern/);
  });

  test("incremental match() agrees with isIgnored on a walked tree", () => {
    const di = DockerIgnore.parse("build\n!build/keep/**\n**/*.tmp\nsrc/gen\n!src/gen/keep.go\n");
    const tree = [
      "build", "build/a.o", "build/keep", "build/keep/x.txt", "build/keep/y.tmp",
      "src", "src/main.go", "src/x.tmp", "src/gen", "src/gen/keep.go", "src/gen/other.go", "docs", "docs/a/b.tmp",
    ];
    const infos = new Map<string, ReturnType<DockerIgnore["match"]>["info"]>();
    for (const p of tree) {
      const parent = p.includes("/") ? p.slice(0, p.lastIndexOf("/")) : undefined;
      const r = di.match(p, parent === undefined ? undefined : infos.get(parent));
      infos.set(p, r.info);
      assert.equal(r.ignored, di.isIgnored(p), p);
    }
    assert.equal(di.isIgnored("build/keep/x.txt"), false);
    assert.equal(di.isIgnored("build/keep/y.tmp"), true);
    assert.equal(di.isIgnored("src/gen/keep.go"), false);
    assert.equal(di.isIgnored("src/gen/other.go"), true);
  });
});
