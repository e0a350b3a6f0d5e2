// Each peer runs in a process of its own, as its users run it: peers interleaved in one process
// share Node's own code (streams, sockets, Buffer, events), and the JIT's feedback from one
// client slowed the other (measured in S7 prefetch 100: lapinmq alone 37 µs/msg, interleaved with
// amqplib in one process 50; amqplib alone 46, interleaved 50). The runner keeps the broker work
// (declare, prefill, counts); a peer's process lives for one scenario (run.ts closes them between
// scenarios), so its warm-up carries over to that scenario's rounds.
import { type ChildProcess, fork } from 'node:child_process'
import { once } from 'node:events'
import type { RunReply, RunRequest } from './peer-child.ts'

export class PeerProcesses {
  readonly #children = new Map<string, ChildProcess>()

  /**
   * Runs one round in `request.peer`'s process; a run past `timeoutMs` kills that process.
   * `nodeArgs`: more flags for node when that process is forked.
   */
  async run(request: RunRequest, timeoutMs: number, nodeArgs: readonly string[] = []): Promise<RunReply> {
    const child = this.#child(request.peer, nodeArgs)
    let timer: NodeJS.Timeout | undefined
    let done = () => {}
    try {
      return await new Promise<RunReply>((resolve, reject) => {
        const replied = (reply: unknown) => resolve(reply as RunReply)
        const exited = (code: number | null) => reject(new Error(`peer process exited (${code})`))
        done = () => {
          child.off('message', replied)
          child.off('exit', exited)
        }
        child.once('message', replied)
        child.once('exit', exited)
        timer = setTimeout(() => {
          this.#kill(request.peer)
          reject(new Error(`timed out after ${timeoutMs} ms`))
        }, timeoutMs)
        child.send(request)
      })
    } finally {
      clearTimeout(timer)
      done()
    }
  }

  /** Lets every peer's process exit on its own (a profile asked for by BENCH_PEER_ARGS is written then). */
  async close(): Promise<void> {
    const children = [...this.#children.values()]
    this.#children.clear()
    await Promise.all(
      children.map(async (child) => {
        if (child.exitCode !== null || child.signalCode !== null) return
        const exited = once(child, 'exit')
        child.disconnect()
        const timer = setTimeout(() => child.kill('SIGKILL'), 10_000)
        await exited
        clearTimeout(timer)
      }),
    )
  }

  #child(peer: string, nodeArgs: readonly string[]): ChildProcess {
    let child = this.#children.get(peer)
    if (!child || child.exitCode !== null || child.signalCode !== null) {
      child = fork(new URL('./peer-child.ts', import.meta.url), {
        // BENCH_PEER_ARGS: more flags for the peers' node, e.g. `--cpu-prof --cpu-prof-dir=prof`.
        execArgv: [
          '--expose-gc',
          '--import',
          'tsx',
          ...nodeArgs,
          ...(process.env.BENCH_PEER_ARGS?.split(' ').filter(Boolean) ?? []),
        ],
        serialization: 'advanced',
        stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
      })
      this.#children.set(peer, child)
    }
    return child
  }

  #kill(peer: string): void {
    this.#children.get(peer)?.kill('SIGKILL')
    this.#children.delete(peer)
  }
}
