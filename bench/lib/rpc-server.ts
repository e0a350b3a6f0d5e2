// S12's RPC servers, each kind in a process of its own (lib/rpc-server-child.ts), kept for the whole
// run: their CPU is neither the client's nor the runner's, and the echo server every client calls
// in the shared variants is one process whose JIT all of them warm alike. The runner starts one on
// a run's fresh queue before the peer runs and stops it after, learning how many requests it answered.
import { type ChildProcess, fork } from 'node:child_process'
import { once } from 'node:events'
import type { RpcServerOptions } from '../scenarios/s12-rpc.ts'
import type { RpcServerKind } from './common.ts'

/** A message from the server's process: started, stopped (with the requests answered), or failed. */
export type ServerReply = { started: true } | { served: number } | { error: string }

export class RpcServers {
  readonly #children = new Map<RpcServerKind, ChildProcess>()

  /** Starts a `kind` server on `options.queue`; stop() tells how many requests it answered. */
  async start(kind: RpcServerKind, options: RpcServerOptions): Promise<{ stop(): Promise<number> }> {
    const child = this.#child(kind)
    await this.#ask(child, { start: options })
    return {
      stop: async () => {
        const reply = await this.#ask(child, { stop: true })
        return 'served' in reply ? reply.served : Number.NaN
      },
    }
  }

  async close(): Promise<void> {
    const children = [...this.#children.values()]
    this.#children.clear()
    await Promise.all(
      children.map(async (child) => {
        if (child.exitCode !== null || child.signalCode !== null) return
        const exited = once(child, 'exit')
        child.disconnect()
        await exited
      }),
    )
  }

  async #ask(child: ChildProcess, request: object): Promise<ServerReply> {
    const replied = once(child, 'message') as Promise<[ServerReply]>
    child.send(request)
    const [reply] = await replied
    if ('error' in reply) throw new Error(`RPC server: ${reply.error}`)
    return reply
  }

  #child(kind: RpcServerKind): ChildProcess {
    let child = this.#children.get(kind)
    if (!child || child.exitCode !== null || child.signalCode !== null) {
      child = fork(new URL('./rpc-server-child.ts', import.meta.url), [kind], {
        execArgv: ['--import', 'tsx'],
        stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
      })
      this.#children.set(kind, child)
    }
    return child
  }
}
