/** The fleet's options, behaviour knobs and result: what callers of runFleet see. */
import type { AdminClient } from '../src/api/index.ts'
import type { TelemetryTable } from '../src/storage/index.ts'
import type { SimDevice, SimResponder } from './fleet-store.ts'
import type { HeadsSource } from './observers.ts'
import type { Percentiles } from './percentiles.ts'

export interface Behaviour {
  /** Connections are opened over this many seconds, each at a random moment. */
  rampSeconds: number
  /** Unacknowledged QoS 1 messages per connection; more wait in the device's queue. */
  inflightWindow: number
  /** Each device's clock is off by up to ± this many ms. */
  clockSkewMs: number
  /** Probability that a device resends a message it already had acknowledged (same sequence number). */
  duplicateRate: number
  /** Probability per simulated hour that a gateway phone goes offline, and for how many simulated minutes. */
  gatewayOutagePerHour: number
  gatewayOutageMinutes: number
  /** Probability that an alarm unit's message is a button press or a fall (else a heartbeat). */
  alarmProbability: number
}

export const DEFAULT_BEHAVIOUR: Behaviour = {
  rampSeconds: 2, inflightWindow: 16, clockSkewMs: 90_000, duplicateRate: 0.002, gatewayOutagePerHour: 0.1, gatewayOutageMinutes: 20, alarmProbability: 0.02,
}

export interface FleetOptions {
  host: string
  port: number
  /** The node's mutual-TLS port: identities with a client certificate connect there, with no password (and no scrypt). */
  mtlsPort?: number
  ca: string | undefined
  fleet: SimDevice[]
  /** Responder identities (one per tenant) for the alarm → responder latency; optional. */
  responders?: SimResponder[]
  /** The admin API, for polling what is queryable; without it (and without `heads`), device → queryable latency is not measured. */
  api?: AdminClient
  /** What is queryable, from elsewhere (a worker gets its parent's one poll); the fleet polls `api` itself when unset. */
  heads?: HeadsSource
  seconds: number
  /** Simulated seconds per real second. */
  speed: number
  behaviour?: Partial<Behaviour>
  /** Sequence numbers start above this (distinct per run and per worker). */
  seqBase?: number
  /** MQTT 3.1.1 (4, the default) or MQTT 5 devices. */
  protocolVersion?: 4 | 5
  log: (s: string) => void
}

export type DataTable = TelemetryTable

export interface FleetResult {
  sent: number
  acked: number
  failed: number
  duplicatesSent: number
  connectFailures: number
  /** Device connections open after the ramp, and how long the ramp took (TLS handshakes and authentication). */
  connected: number
  connectSeconds: number
  /** When this fleet's devices were all connected (epoch ms): alarms sent after every fleet's are the steady state's. */
  connectedAtMs: number
  transport: 'tls+password' | 'mutual-tls'
  mqtt: '3.1.1' | '5'
  /** MQTT 5 PUBACK reason codes other than 0x00, by code (0x87 for every message of a patient without consent, replays of resends). */
  pubackCodes: Record<string, number>
  reconnects: number
  gatewayOutages: number
  backfilled: number
  /** Rows the acknowledged messages must have produced, per table. */
  expected: Record<DataTable, number>
  ackLatencyMs: Percentiles
  /** Device send → the message's rows are queryable (resolution: the poll interval). */
  queryableLatencyMs: Percentiles | null
  alarmToResponderMs: Percentiles | null
  /** The same for the alarms sent once every device of the run was connected: a connect storm's TLS handshakes left out. */
  alarmToResponderConnectedMs: Percentiles | null
  /** The node's resident memory over the run (from its /metrics), when the admin API is given. */
  nodeRssMB: {
    first: number; max: number; last: number
    /** least-squares slope over the run, and over its second half (after warm-up) */
    mbPerMinute: number; secondHalfMbPerMinute: number
    /** RSS at each whole minute of the run */
    byMinute: number[]
    samples: number
  } | null
  /**
   * The node's CPU over the run from its /metrics (Linux): seconds per thread (main; ClickHouse's
   * ThreadPool, MergeMutate …; Node's helpers), main-thread seconds per step of the ingest path
   * (sampled), and all threads' seconds per million rows logged.
   */
  nodeCpu: {
    seconds: number; byThread: Record<string, number>; byStage: Record<string, number>
    rowsLogged: number; cpuSecondsPerMillionRows: number | null
  } | null
  /**
   * The simulator's own event-loop delay while it published. Every latency above is measured
   * from this process: when this is high, the load generator, not the node, sets the tail.
   */
  simEventLoopDelayMs: { p50: number; p99: number; max: number }
  /** The same, of the process that sends the alarms and times them at the responders (with `--workers`, one of its own). */
  alarmSimEventLoopDelayMs: { p50: number; p99: number; max: number }
  elapsedSeconds: number
  /** Raw latency samples (capped), so workers' results can be merged. */
  samples: { ack: number[]; queryable: number[]; alarm: number[]; alarmSentAt: number[] }
}

/** What a run counts and measures, shared by its parts. */
export interface RunTally {
  r: { sent: number; acked: number; failed: number; duplicatesSent: number; connectFailures: number; reconnects: number; gatewayOutages: number; backfilled: number }
  expected: Record<DataTable, number>
  pubackCodes: Record<string, number>
  samples: FleetResult['samples']
  /** Adds a latency sample, up to the cap. */
  keep: (xs: number[], v: number) => void
  /** device → sequence numbers acknowledged but not yet seen queryable, with their send time. */
  awaitingQuery: Map<string, Array<{ seq: number; at: number }>>
  /** `${device}/${seq}` → send time of alarms that reach responders. */
  awaitingResponder: Map<string, number>
}
