/** Go's time.ParseDuration, as Docker's flags and Dockerfile durations use it ("1m30s", "500ms"): nanoseconds. */
import { BadParameterError } from "./errors.js";

const DURATION_UNITS: Readonly<Record<string, number>> = {
  ns: 1, us: 1e3, "µs": 1e3, "μs": 1e3, ms: 1e6, s: 1e9, m: 60e9, h: 3600e9,
};

export function parseGoDuration(s: string): number {
  const q = JSON.stringify(s);
  let rest = s;
  let sign = 1;
  if (rest.startsWith("-") || rest.startsWith("+")) {
    if (rest[0] === "-") sign = -1;
    rest = rest.slice(1);
  }
  if (rest === "0") return 0;
  if (rest === "") throw new BadParameterError(`time: invalid duration ${q}`);
  let total = 0;
  while (rest !== "") {
    const num = /^(\d*)(?:\.(\d*))?/.exec(rest) as RegExpExecArray;
    if (num[0] === "" || num[0] === "." || (num[1] === "" && (num[2] ?? "") === "")) {
      throw new BadParameterError(`time: invalid duration ${q}`);
    }
    rest = rest.slice(num[0].length);
    const unit = /^[^\d.]*/.exec(rest)?.[0] ?? "";
    if (unit === "") throw new BadParameterError(`time: missing unit in duration ${q}`);
    const mult = DURATION_UNITS[unit];
    if (mult === undefined) throw new BadParameterError(`time: unknown unit ${JSON.stringify(unit)} in duration ${q}`);
    rest = rest.slice(unit.length);
    total += Number(`${num[1] || "0"}.${num[2] ?? "0"}`) * mult;
  }
  return sign * Math.round(total);
}
