// The process of one kind of S12 RPC server (see rpc-server.ts): it starts the server on a queue
// when asked, and stops it, replying with the requests it answered.

import { type RpcServer, type RpcServerOptions, rpcServers } from '../scenarios/s12-rpc.ts'
import type { RpcServerKind } from './common.ts'
import type { ServerReply } from './rpc-server.ts'

process.on('unhandledRejection', (err) => console.error('unhandled rejection:', err))
process.on('disconnect', () => process.exit(0))

const kind = process.argv[2] as RpcServerKind
let server: RpcServer | undefined

process.on('message', (request: { start?: RpcServerOptions; stop?: true }) => {
  void handle(request).then((reply) => process.send?.(reply))
})

async function handle(request: { start?: RpcServerOptions; stop?: true }): Promise<ServerReply> {
  try {
    if (request.start) {
      server = await rpcServers[kind](request.start)
      return { started: true }
    }
    const served = (await server?.close()) ?? Number.NaN
    server = undefined
    return { served }
  } catch (err) {
    return { error: err instanceof Error ? err.message : String(err) }
  }
}
