// Setup shared by the fault tests: one private RabbitMQ node per test file; a publishing and a
// consuming connection with their states and error events recorded, and the check that such a pair
// recovered; a watch on a connection's drops and reconnects.
//
//   const node = usePrivateBroker()                   // started in before(), stopped in after()
//   const { pubConnection, conConnection, pubStates, conStates, errors } =
//     connectionPair({ url: node.broker.url, recovery }, { pub: 'x-pub', con: 'x-con' })
import assert from 'node:assert/strict'
import { after, before } from 'node:test'
import { Connection, type ConnectionOptions, type ConnectionState, type LapinError } from 'lapinmq'
import { inOrder, recordStates } from './fault-traffic.ts'
import { PrivateBroker, type PrivateBrokerOptions } from './private-broker.ts'

/** Starts a private RabbitMQ node before the calling file's tests and stops it after them; read `.broker` in a test. */
export function usePrivateBroker(options: PrivateBrokerOptions = {}): { readonly broker: PrivateBroker } {
  let started: PrivateBroker | undefined
  before(async () => {
    started = await PrivateBroker.start(options)
  })
  after(async () => {
    await started?.stop()
  })
  return {
    get broker(): PrivateBroker {
      if (started === undefined) throw new Error('the private broker is not started (used outside a test?)')
      return started
    },
  }
}

/** What connectionPair() returns: both connections, their state changes and their error events. */
export interface ConnectionPair {
  pubConnection: Connection
  conConnection: Connection
  pubStates: { state: ConnectionState; at: number }[]
  conStates: { state: ConnectionState; at: number }[]
  /** Every 'error' event of either connection, in order. */
  errors: LapinError[]
}

/** Opens a publishing and a consuming connection (named `names.pub` / `names.con`) and records their states and errors. */
export function connectionPair(
  options: Omit<ConnectionOptions, 'name'>,
  names: { pub: string; con: string },
): ConnectionPair {
  const pubConnection = new Connection({ ...options, name: names.pub })
  const conConnection = new Connection({ ...options, name: names.con })
  const pubStates = recordStates(pubConnection)
  const conStates = recordStates(conConnection)
  const errors: LapinError[] = []
  pubConnection.on('error', (e) => errors.push(e))
  conConnection.on('error', (e) => errors.push(e))
  return { pubConnection, conConnection, pubStates, conStates, errors }
}

/** Asserts that both connections of a pair went 'open' → 'reconnecting' → 'open' and are open now. */
export function assertPairReconnected(pair: ConnectionPair): void {
  for (const [name, states, connection] of [
    ['publisher', pair.pubStates, pair.pubConnection],
    ['consumer', pair.conStates, pair.conConnection],
  ] as const) {
    const sequence = states.map((s) => s.state)
    assert.ok(inOrder(sequence, ['open', 'reconnecting', 'open']), `${name} states: ${sequence.join(' → ')}`)
    assert.equal(connection.state, 'open')
  }
}

/** Every time a connection dropped (with why) and every time it opened. */
export function watchConnection(connection: Connection): {
  disconnects: { at: number; error: LapinError | undefined }[]
  connects: number[]
} {
  const watch = {
    disconnects: [] as { at: number; error: LapinError | undefined }[],
    connects: [] as number[],
  }
  connection.on('disconnected', (error) => watch.disconnects.push({ at: performance.now(), error }))
  connection.on('connected', () => watch.connects.push(performance.now()))
  return watch
}
