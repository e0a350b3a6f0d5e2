// Counters behind `stats()`: plain integer fields incremented where each outcome is decided, and
// durations in a native histogram (perf_hooks), so that counting costs no allocation per message.
// OpenTelemetry's observable instruments read the same fields (see metrics.ts): both always agree.
import { createHistogram, type RecordableHistogram } from 'node:perf_hooks'

/** Percentiles of a duration, in milliseconds (microsecond resolution). All 0 while `count` is 0. */
export interface DurationStats {
  /** Median. */
  p50: number
  /** 90th percentile. */
  p90: number
  /** 99th percentile. */
  p99: number
  /** Longest. */
  max: number
  /** Durations recorded. */
  count: number
}

/** @internal Durations recorded in microseconds (at least 1), read as percentiles in ms. */
export class DurationHistogram {
  readonly #histogram: RecordableHistogram = createHistogram()
  /** Called with each duration in ms (OpenTelemetry's histogram, when there is one). */
  onRecord: ((ms: number) => void) | undefined = undefined

  /** Records a duration given in ms (a negative one, from a clock step, counts as the shortest). */
  record(ms: number): void {
    const us = Math.round(ms * 1000)
    this.#histogram.record(us > 0 ? us : 1)
    this.onRecord?.(ms)
  }

  get count(): number {
    return this.#histogram.count
  }

  snapshot(): DurationStats {
    const h = this.#histogram
    if (h.count === 0) return { p50: 0, p90: 0, p99: 0, max: 0, count: 0 }
    return {
      p50: h.percentile(50) / 1000,
      p90: h.percentile(90) / 1000,
      p99: h.percentile(99) / 1000,
      max: h.max / 1000,
      count: h.count,
    }
  }
}

/**
 * What a {@link Publisher} did since it was made (never reset). Every send ends in exactly one of
 * `confirmed`, `returned`, `nacked`, `timedOut` and `failed`; the sends not yet ended are
 * `buffered` or `inFlight`.
 */
export interface PublisherStats {
  /** Sends made (`sendMessage`, `sendJson` and the like that did not throw): each ends in one outcome. */
  sends: number
  /**
   * Messages written to a channel (`basic.publish`). A send written again on a new channel
   * (`republished`) counts once per write.
   */
  published: number
  /** Sends confirmed by the broker (their promise resolved). */
  confirmed: number
  /** Sends rejected with `UNROUTABLE`: the broker returned them (no queue bound for them). */
  returned: number
  /** Sends rejected with `PUBLISH_NACKED`: the broker refused them (`basic.nack`). */
  nacked: number
  /** Sends rejected with `CONFIRM_TIMEOUT`: no answer before `confirmTimeout`. */
  timedOut: number
  /**
   * Sends rejected with any other error: `CONNECTION_CLOSED` (stopped, or the connection lost with
   * `republish: false`), `CHANNEL_CLOSED`, `BUFFER_FULL`, `MESSAGE_TOO_LARGE`, or the broker's
   * refusal of the channel (`NOT_FOUND` for a missing exchange...).
   */
  failed: number
  /**
   * Sends put back to be written again on a new channel: their channel closed before their
   * confirm (`republish`), or a channel opened just after a failover nacked them.
   */
  republished: number
  /** Sends waiting to be written (no room in the window, no channel, or their exchange being checked): now. */
  buffered: number
  /** Messages written and not yet confirmed: now. */
  inFlight: number
  /**
   * From a message's (last) write to the broker's answer (`basic.ack` or `basic.nack`) for it,
   * for every answer received.
   */
  confirmLatency: DurationStats
}

/** @internal The counters of a publisher; see {@link PublisherStats} for what each counts. */
export class PublisherCounters {
  sends = 0
  published = 0
  confirmed = 0
  returned = 0
  nacked = 0
  timedOut = 0
  failed = 0
  republished = 0
  readonly confirmLatency = new DurationHistogram()

  /** A send ended: `code` is its error's, undefined when it was confirmed. */
  settled(code: string | undefined): void {
    if (code === undefined) this.confirmed++
    else if (code === 'UNROUTABLE') this.returned++
    else if (code === 'PUBLISH_NACKED') this.nacked++
    else if (code === 'CONFIRM_TIMEOUT') this.timedOut++
    else this.failed++
  }

  snapshot(buffered: number, inFlight: number): PublisherStats {
    return {
      sends: this.sends,
      published: this.published,
      confirmed: this.confirmed,
      returned: this.returned,
      nacked: this.nacked,
      timedOut: this.timedOut,
      failed: this.failed,
      republished: this.republished,
      buffered,
      inFlight,
      confirmLatency: this.confirmLatency.snapshot(),
    }
  }
}

/**
 * What a {@link Consumer} did since it was made (never reset). Every delivery is settled once as
 * `acked`, `rejected` or `requeued` (or not at all: its channel closed first, and the broker
 * requeued it), or is still `unsettled`.
 */
export interface ConsumerStats {
  /** Messages the broker delivered, redeliveries included. */
  delivered: number
  /** Deliveries the broker flagged `redelivered` (delivered before, then requeued). */
  redelivered: number
  /**
   * Deliveries settled with an ack: a task's `SUCCESS`, `message.ack()`, or a failed message
   * whose copy the retry ladder moved (see `retried`, `deadLettered`).
   */
  acked: number
  /**
   * Deliveries rejected without requeue: `FAIL_DO_NOT_RETRY` or `message.reject()` without a
   * retry ladder (dead-lettered by the queue's own dead-letter exchange, if any), an invalid
   * message, or a retry ladder with no dead-letter queue giving up.
   */
  rejected: number
  /**
   * Deliveries given back to the queue (reject with requeue): a failure retried without a retry
   * ladder, a move along the ladder that failed, or a message prefetched when stop() came.
   */
  requeued: number
  /** Failed messages whose copy went to the retry ladder's next delay queue (confirmed), the original then acked. */
  retried: number
  /** Failed messages whose copy went to the retry ladder's dead-letter queue (confirmed), the original then acked. */
  deadLettered: number
  /**
   * Settles (counted in `acked`, `rejected` or `requeued` too) dropped because the delivering
   * channel had closed before they left: the broker requeued those messages itself.
   */
  staleSettles: number
  /** Tasks running: now. */
  running: number
  /** Deliveries not yet settled (running, waiting for a slot, held for a backoff, or handled via callback): now. */
  unsettled: number
  /**
   * From the call of the task function to its result (returned, or its promise settled), for every
   * task that ended, those that threw or ran past `taskTimeout` included.
   */
  taskDuration: DurationStats
}

/** @internal The counters of a consumer; see {@link ConsumerStats} for what each counts. */
export class ConsumerCounters {
  delivered = 0
  redelivered = 0
  acked = 0
  rejected = 0
  requeued = 0
  retried = 0
  deadLettered = 0
  readonly taskDuration = new DurationHistogram()

  settled(outcome: 'ack' | 'reject' | 'requeue'): void {
    if (outcome === 'ack') this.acked++
    else if (outcome === 'reject') this.rejected++
    else this.requeued++
  }

  /** A retry ladder confirmed a failed message's copy. */
  moved(result: 'delayed' | 'dead-lettered' | 'rejected'): void {
    if (result === 'delayed') this.retried++
    else if (result === 'dead-lettered') this.deadLettered++
  }

  snapshot(staleSettles: number, running: number, unsettled: number): ConsumerStats {
    return {
      delivered: this.delivered,
      redelivered: this.redelivered,
      acked: this.acked,
      rejected: this.rejected,
      requeued: this.requeued,
      retried: this.retried,
      deadLettered: this.deadLettered,
      staleSettles,
      running,
      unsettled,
      taskDuration: this.taskDuration.snapshot(),
    }
  }
}

/** What a {@link Connection} went through since it was made (never reset). */
export interface ConnectionStats {
  /** Connections lost (not counting a close asked for by `close()` or `destroy()`). */
  disconnects: number
  /** Recoveries: a connection opened again after one was lost. */
  reconnects: number
  /** Times the broker blocked the connection (`connection.blocked`: a memory or disk alarm). */
  blocks: number
  /** Milliseconds the connection spent blocked, the current block included. */
  blockedMs: number
  /** Blocked now. */
  blocked: boolean
}

/** @internal The counters of a connection; see {@link ConnectionStats} for what each counts. */
export class ConnectionCounters {
  disconnects = 0
  reconnects = 0
  blocks = 0
  #blockedMs = 0
  /** When the current block began (performance.now()), or -1. */
  #blockedSince = -1

  block(): void {
    if (this.#blockedSince >= 0) return
    this.blocks++
    this.#blockedSince = performance.now()
  }

  /** Unblocked, or the connection (and its block) went away. */
  unblock(): void {
    if (this.#blockedSince < 0) return
    this.#blockedMs += performance.now() - this.#blockedSince
    this.#blockedSince = -1
  }

  get blockedMs(): number {
    const current = this.#blockedSince >= 0 ? performance.now() - this.#blockedSince : 0
    return this.#blockedMs + current
  }

  snapshot(): ConnectionStats {
    return {
      disconnects: this.disconnects,
      reconnects: this.reconnects,
      blocks: this.blocks,
      blockedMs: Math.round(this.blockedMs),
      blocked: this.#blockedSince >= 0,
    }
  }
}

/**
 * What an {@link RpcClient} did since it was made (never reset). Every call ends in exactly one of
 * `replies`, `timedOut` and `failed`, or is still `pending`.
 */
export interface RpcClientStats {
  /** Calls made (`call`, `callJson` that did not throw). */
  calls: number
  /** Calls answered by their own reply. */
  replies: number
  /** Calls rejected with `RPC_TIMEOUT`. */
  timedOut: number
  /** Calls rejected with any other error: `ABORTED`, `UNROUTABLE`, `CONNECTION_CLOSED`, `NOT_FOUND`... */
  failed: number
  /** Replies that came after their call had ended (dropped): also `rpcClient.lateReplies`. */
  lateReplies: number
  /** Calls not yet ended: now. */
  pending: number
}

/** @internal The counters of an RPC client; see {@link RpcClientStats} for what each counts. */
export class RpcClientCounters {
  calls = 0
  replies = 0
  timedOut = 0
  failed = 0

  /** A call ended: `code` is its error's, undefined for a reply. */
  ended(code: string | undefined): void {
    if (code === undefined) this.replies++
    else if (code === 'RPC_TIMEOUT') this.timedOut++
    else this.failed++
  }

  snapshot(lateReplies: number, pending: number): RpcClientStats {
    const { calls, replies, timedOut, failed } = this
    return { calls, replies, timedOut, failed, lateReplies, pending }
  }
}
