/**
 * Short pauses the engine takes itself (commit reads the layer, cp-in writes
 * into the root) share one counted hold per container: the first holder
 * pauses a running container, later holders wait for that same pause, and the
 * last one to let go unpauses it. So concurrent commits and copies of one
 * running container all succeed and leave it running, and a container the
 * user paused is neither paused again nor unpaused behind the user's back.
 *
 * The holds are per ContainerService (one per daemon), shared by every
 * service that pauses through it.
 */
import type { ContainerService } from "./containers.js";
import type { ContainerRecord } from "./types.js";

interface Hold { count: number; ready: Promise<void> }

const holdsByService = new WeakMap<ContainerService, Map<string, Hold>>();

/**
 * Pauses c for the caller unless the caller asked for no pause (`pause`
 * false), c is not running, or the user has paused it; returns the release,
 * which is safe to call once whatever happened meanwhile.
 */
export async function holdPaused(containers: ContainerService, c: ContainerRecord, pause = true): Promise<() => Promise<void>> {
  let holds = holdsByService.get(containers);
  if (!holds) { holds = new Map(); holdsByService.set(containers, holds); }
  const map = holds;
  let h = map.get(c.Id);
  if (!h) {
    // Nothing of ours holds it: pause only a running container the user has not paused.
    if (!pause || !c.State.Running || c.State.Paused) return async () => {};
    const ready = containers.pause(c.Id);
    h = { count: 0, ready };
    map.set(c.Id, h);
    const mine = h;
    ready.catch(() => { if (map.get(c.Id) === mine) map.delete(c.Id); });
  }
  const hold = h;
  hold.count++;
  try {
    await hold.ready;
  } catch (e) {
    hold.count--;
    throw e;
  }
  let released = false;
  return async () => {
    if (released) return;
    released = true;
    if (--hold.count > 0) return;
    if (map.get(c.Id) === hold) map.delete(c.Id);
    // The user may have unpaused it, or it may have stopped, meanwhile: nothing to undo then.
    if (c.State.Running && c.State.Paused) await containers.unpause(c.Id).catch(() => {});
  };
}
