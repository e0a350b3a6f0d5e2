// The process one peer runs in (see peer-process.ts): it receives a run (scenario, peer, the
// run's settings), builds the marks and counts, runs the peer and sends back what was measured.
// Only this peer's code runs here, so its CPU, event-loop delay and RSS are its own.
import { bodyOf, type Counts, newCounts, type RunContext } from './common.ts'
import { createMarks, type Sample } from './measure.ts'
import { scenarioById } from './plan.ts'

/** A run as sent by the runner: the context without the parts that live in this process. */
export type RunRequest = {
  scenario: string
  peer: string
  brokerPid: number | undefined
  ctx: Omit<RunContext, 'marks' | 'counts' | 'rss' | 'body'> & { size: number }
}

export type RunReply = { counts: Counts; sample: Sample; rss: number[]; error?: string }

process.on('unhandledRejection', (err) => console.error('unhandled rejection:', err))
process.on('disconnect', () => process.exit(0))

process.on('message', (request: RunRequest) => {
  void run(request).then((reply) => process.send?.(reply))
})

async function run({ scenario, peer, brokerPid, ctx }: RunRequest): Promise<RunReply> {
  const marks = createMarks(brokerPid)
  const counts = newCounts()
  const rss: number[] = []
  let error: string | undefined
  try {
    const runPeer = scenarioById.get(scenario)?.peers[peer]
    if (!runPeer) throw new Error(`no peer ${peer} in ${scenario}`)
    ;(globalThis as { gc?: () => void }).gc?.()
    await runPeer({ ...ctx, body: bodyOf(ctx.size), marks, counts, rss })
  } catch (err) {
    error = err instanceof Error ? err.message : String(err)
  } finally {
    marks.stop()
  }
  return { counts, sample: marks.sample(), rss, ...(error === undefined ? {} : { error }) }
}
