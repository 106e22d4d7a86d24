import type { Ctx } from "./cli.js";
export function playName(file: string): string { return file; }
export async function play(_c: Ctx, _text: string, _o: { name: string; down?: boolean; replace?: boolean; wait?: boolean }): Promise<number> { return 1; }
