/**
 * Id maps of a remapped daemon's user namespace (--userns-remap), as the OCI
 * spec's uidMappings name their ranges: container id → host id when layers
 * and copied-in files are unpacked, host id → container id when a container's
 * files are read back (commit, cp out). Plain data, so a layer job can carry
 * them to its worker thread.
 */
import { BadParameterError } from "../lib/errors.js";

/** One range of an id map. */
export interface IdMapEntry { containerID: number; hostID: number; size: number }
export interface IdMaps { uids: IdMapEntry[]; gids: IdMapEntry[] }

/** A container id's host id; one outside the maps is Docker's error. */
export function mapId(map: IdMapEntry[], id: number, what: string): number {
  for (const m of map) if (id >= m.containerID && id < m.containerID + m.size) return m.hostID + (id - m.containerID);
  throw new BadParameterError(`Container ID ${id} cannot be mapped to a host ID (${what})`);
}

/** A host id back to the container's; unmapped ids are the overflow id, as the kernel shows them. */
export function unmapId(map: IdMapEntry[], id: number): number {
  for (const m of map) if (id >= m.hostID && id < m.hostID + m.size) return m.containerID + (id - m.hostID);
  return 65534;
}
