import { Connection } from './connection.js'

/** The two process-wide connections: publishers on one, consumers on the other. */
export type SharedRole = 'publish' | 'consume'

const shared = new Map<SharedRole, { connection: Connection; users: number }>()

/**
 * Takes a reference to the shared connection for `role`, creating it from the environment on first
 * use. A broker under a resource alarm blocks publishing connections; keeping consumers on their own
 * connection lets them go on acking.
 */
export function acquireShared(role: SharedRole): Connection {
  let entry = shared.get(role)
  if (!entry) {
    entry = { connection: new Connection({ name: `lapinmq:${role}:${process.pid}` }), users: 0 }
    shared.set(role, entry)
  }
  entry.users++
  return entry.connection
}

/** Drops a reference; the last one closes the connection. */
export async function releaseShared(connection: Connection): Promise<void> {
  for (const [role, entry] of shared) {
    if (entry.connection !== connection) continue
    if (--entry.users > 0) return
    shared.delete(role)
    await connection.close()
    return
  }
}
