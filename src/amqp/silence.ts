/**
 * Notices a silent broker within 1.5 to 1.75 heartbeats, where amqplib takes 2 to 3: it checks for
 * incoming data once per heartbeat and gives up after two empty checks. RabbitMQ sends a heartbeat
 * every half heartbeat on an idle connection, so 1.5 heartbeats without a byte is three missed in a
 * row. Checked every quarter heartbeat; a check that runs late after the event loop was blocked
 * counts once, and the data waiting meanwhile is read right after it, so a busy process is not
 * taken for a dead broker. When the silence is long enough, amqplib's own heartbeat timeout is
 * raised: the connection closes exactly as amqplib closes it.
 */

/** The parts of amqplib's connection this reads: the flag it sets for each chunk read, and its heart. */
interface Watched {
  recvSinceLastCheck: boolean
  heartbeater?: { emit(event: 'timeout'): boolean } | null
}

/** When the last byte came from the broker (`performance.now()`, a clock that never jumps), kept up to date by {@link watchSilence}. */
export interface Heard {
  at: number
}

/** Quarter-heartbeat checks in a row without a byte before the connection is taken for dead. */
const silentChecks = 6

/**
 * Starts watching `connection` (amqplib's connection object) with a heartbeat of `heartbeat`
 * seconds; returns the function that stops it, or undefined when there is nothing to watch
 * (no heartbeat, or an amqplib whose internals differ: its own detection then stands alone).
 * `heard.at` is set to the time of each chunk read (a health check reads it).
 */
export function watchSilence(
  connection: unknown,
  heartbeat: number,
  heard: Heard = { at: 0 },
): (() => void) | undefined {
  const c = connection as Partial<Watched> | undefined
  if (!(heartbeat > 0) || typeof c?.recvSinceLastCheck !== 'boolean') return undefined
  const heart = c.heartbeater
  if (typeof heart?.emit !== 'function') return undefined
  const watched = c as Watched
  let value = watched.recvSinceLastCheck
  let heardSinceCheck = true
  heard.at = performance.now()
  // Set by amqplib once per chunk read from the socket (and cleared by its own checks).
  Object.defineProperty(watched, 'recvSinceLastCheck', {
    configurable: true,
    enumerable: true,
    get: () => value,
    set: (next: boolean) => {
      value = next
      if (next) {
        heardSinceCheck = true
        heard.at = performance.now()
      }
    },
  })
  let silent = 0
  const timer = setInterval(
    () => {
      if (silent >= silentChecks) return // timed out already
      if (heardSinceCheck) {
        heardSinceCheck = false
        silent = 0
      } else if (++silent >= silentChecks) {
        clearInterval(timer)
        heart.emit('timeout')
      }
    },
    (heartbeat * 1000) / 4,
  )
  timer.unref()
  return () => clearInterval(timer)
}
