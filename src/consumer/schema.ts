// Validation of JSON bodies by any Standard Schema v1 validator (zod, valibot, arktype...). The
// spec is a handful of types meant to be written down by each user of it, so lapinmq depends on no
// validator at all: a schema is recognised by its `~standard` property.

/**
 * A validator that follows the Standard Schema v1 spec (zod ≥ 3.24, valibot ≥ 1, arktype, ...):
 * lapinmq reads only its `~standard` property.
 */
export interface StandardSchemaV1<Input = unknown, Output = Input> {
  /** The Standard Schema properties. */
  readonly '~standard': StandardSchemaProps<Input, Output>
}

/** The `~standard` property of a {@link StandardSchemaV1}. */
export interface StandardSchemaProps<Input = unknown, Output = Input> {
  /** The version of the spec: 1. */
  readonly version: 1
  /** The name of the schema library. */
  readonly vendor: string
  /** Validates a value: its (possibly transformed) output, or the issues found. */
  readonly validate: (value: unknown) => StandardSchemaResult<Output> | Promise<StandardSchemaResult<Output>>
  /** The input and output types, for type inference only (absent at run time). */
  readonly types?: StandardSchemaTypes<Input, Output> | undefined
}

/** The types a schema declares, for inference only. */
export interface StandardSchemaTypes<Input = unknown, Output = Input> {
  /** The type the schema accepts. */
  readonly input: Input
  /** The type it gives once validated (transforms and defaults applied). */
  readonly output: Output
}

/** What a {@link StandardSchemaProps.validate} returns: the output value, or issues. */
export type StandardSchemaResult<Output> = StandardSchemaSuccess<Output> | StandardSchemaFailure

/** A validation that passed. */
export interface StandardSchemaSuccess<Output> {
  /** The validated value: the schema's output. */
  readonly value: Output
  /** No issues. */
  readonly issues?: undefined
}

/** A validation that failed. */
export interface StandardSchemaFailure {
  /** What is wrong, one issue each. */
  readonly issues: readonly StandardSchemaIssue[]
}

/** One problem a schema found. */
export interface StandardSchemaIssue {
  /** What is wrong, in the schema library's words. */
  readonly message: string
  /** Where: keys, or segments that hold a key. */
  readonly path?: readonly (PropertyKey | StandardSchemaPathSegment)[] | undefined
}

/** A segment of an issue's path that holds its key (and may hold more, which lapinmq ignores). */
export interface StandardSchemaPathSegment {
  /** The key. */
  readonly key: PropertyKey
}

/** The output type of a schema. */
export type InferSchemaOutput<S extends StandardSchemaV1> = NonNullable<S['~standard']['types']>['output']

/** One problem with a message's body, as an `invalidMessage` event reports it. */
export interface InvalidMessageIssue {
  /** Where in the body (keys and array indexes, so `path.join('.')` reads well); empty for the body as a whole. */
  readonly path: readonly (string | number)[]
  /** What is wrong, in the schema library's words. */
  readonly message: string
}

/** @internal The issue of a body that is not JSON. */
export const notJsonIssues: readonly InvalidMessageIssue[] = Object.freeze([
  Object.freeze({ path: Object.freeze([]), message: 'the body is not valid JSON' }),
])

/** @internal The issue of a message whose validator threw instead of returning issues. */
export const validatorThrewIssues: readonly InvalidMessageIssue[] = Object.freeze([
  Object.freeze({ path: Object.freeze([]), message: 'the schema threw while validating the body' }),
])

/** @internal True for an object that carries a Standard Schema v1 `~standard` property. */
export function isStandardSchema(value: unknown): value is StandardSchemaV1 {
  if ((typeof value !== 'object' && typeof value !== 'function') || value === null) return false
  const props = (value as { '~standard'?: unknown })['~standard'] as Partial<StandardSchemaProps> | undefined
  return (
    typeof props === 'object' && props !== null && props.version === 1 && typeof props.validate === 'function'
  )
}

/** @internal A validator's issues, each path reduced to its keys. */
export function toIssues(issues: readonly StandardSchemaIssue[]): InvalidMessageIssue[] {
  return issues.map((issue) => ({
    path: (Array.isArray(issue.path) ? issue.path : []).map((segment) => {
      const key = typeof segment === 'object' && segment !== null ? segment.key : segment
      // A symbol key is rare in a JSON body's issues; as text it still says where.
      return typeof key === 'number' ? key : String(key)
    }),
    message: typeof issue.message === 'string' ? issue.message : 'invalid',
  }))
}

/**
 * What an `invalidMessage` event tells: why the message was refused and which delivery it was,
 * never its body. The message was rejected without requeue.
 */
export interface InvalidMessageInfo {
  /** `'unparsable'`: the body is not JSON; `'invalid'`: the schema refused it. */
  readonly reason: 'unparsable' | 'invalid'
  /** What is wrong, and where. */
  readonly issues: readonly InvalidMessageIssue[]
  /** The queue it was consumed from. */
  readonly queue: string
  /** The exchange it was published to (`''` for the default exchange). */
  readonly exchange: string
  /** The routing key it was published with. */
  readonly routingKey: string
  /** Its `messageId` property, if it had one. */
  readonly messageId: string | undefined
  /** The delivery tag on the channel that delivered it. */
  readonly deliveryTag: number
  /** True when the broker delivered it before. */
  readonly redelivered: boolean
}
