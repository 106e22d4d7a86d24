/**
 * Linux signal names and numbers as Docker parses them (moby/sys/signal):
 * "KILL", "SIGKILL", "kill", "9", "SIGRTMIN+3" are fine; "SIG", "SIGFOO",
 * "0", "-1", "65" and "1.5" are `Invalid signal: <s>` (400).
 */
import { BadParameterError } from "./errors.js";

const NAMES: Record<string, number> = {
  ABRT: 6, ALRM: 14, BUS: 7, CHLD: 17, CLD: 17, CONT: 18, FPE: 8, HUP: 1, ILL: 4, INT: 2, IO: 29, IOT: 6, KILL: 9,
  PIPE: 13, POLL: 29, PROF: 27, PWR: 30, QUIT: 3, SEGV: 11, STKFLT: 16, STOP: 19, SYS: 31, TERM: 15, TRAP: 5,
  TSTP: 20, TTIN: 21, TTOU: 22, URG: 23, USR1: 10, USR2: 12, VTALRM: 26, WINCH: 28, XCPU: 24, XFSZ: 25,
  RTMIN: 34, RTMAX: 64,
};
for (let i = 1; i <= 15; i++) NAMES[`RTMIN+${i}`] = 34 + i;
for (let i = 1; i <= 14; i++) NAMES[`RTMAX-${i}`] = 64 - i;

/** The signal's number; a BadParameterError with Docker's message when it is not a Linux signal. */
export function parseSignal(raw: string): number {
  if (/^\d+$/.test(raw)) {
    const n = Number(raw);
    if (n >= 1 && n <= 64) return n;
    throw new BadParameterError(`Invalid signal: ${raw}`);
  }
  const name = raw.toUpperCase().replace(/^SIG/, "");
  const n = Object.prototype.hasOwnProperty.call(NAMES, name) ? NAMES[name] : undefined;
  if (n === undefined) throw new BadParameterError(`Invalid signal: ${raw}`);
  return n;
}
