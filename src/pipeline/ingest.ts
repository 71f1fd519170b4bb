/**
 * The hot path, as a list of named steps, run inside the broker's
 * authorizePublish so that a QoS 1 PUBACK means "stored":
 *
 *   authorize topic → open envelope → check replay → decrypt → decode
 *     → filter consent → encode rows → batch (PUBACK when the batch is stored)
 *
 * A refusal is a result, not an exception: each step returns a typed refusal
 * with a reason code, which is counted and recorded without the payload.
 */
import { STREAM_TABLE } from '../catalogue/index.ts'
import { covers, type ConsentIndex } from '../consent/index.ts'
import { associatedData, open, ReplayWindow } from '../crypto/index.ts'
import { AlarmKind, decodeEnvelope, decodePayload, parseTopic, type AlarmNotice, type DeviceStatus, type Envelope, type Payload, type TelemetryTopic } from '../decode/index.ts'
import type { DeviceRecord } from '../registry/index.ts'
import {
  alarmRows, laneOf, rejectionRow, securityEventRow, sequenceRow, spotRows, statusRows, vitalRows, type Encoded, type Lane, type RowContext, type StorageWriter, type TableName,
} from '../storage/index.ts'
import { bump, STAGE_SAMPLE, type IngestMetrics } from './metrics.ts'
import type { Admission } from './admission.ts'
import { Reason, type Refused } from '../reasons.ts'
import { BurstDetector, type BurstOptions, type SecurityEvent } from './security-events.ts'

export interface Sender {
  record: DeviceRecord
  clientId: string
  remoteAddress: string
  /** Whether its connection is still open: a bulk message still waiting for storage when it closed is dropped (the device resends it). */
  connected?: () => boolean
}

export type Outcome =
  | { kind: 'stored'; table: TableName; rows: number; filtered: number; durable: Promise<void>; /** A resend of a message still on its way: answered with it, not counted again. */ resent?: true }
  | { kind: 'rejected'; reason: Reason; detail: string; disconnect: boolean }

type Refusal = Extract<Outcome, { kind: 'rejected' }>

function refuse (reason: Reason, detail: string, disconnect = false): Refusal {
  return { kind: 'rejected', reason, detail, disconnect }
}

export interface IngestDeps {
  consent: Pick<ConsentIndex, 'gate'>
  /** Enrolled devices by id (for gateways publishing on a bound device's behalf) and their patient at a time. */
  devices?: { device: (id: string) => DeviceRecord | undefined; patientAt: (d: DeviceRecord, t: number) => string | null }
  /** Only write: the path queues rows and waits for them to be durable. */
  storage: StorageWriter
  /** Overload control: bulk telemetry waits here while storage is behind (alarms and status never do). */
  admission?: Admission
  metrics: IngestMetrics
  now?: () => number
  /** Each device's window of sequence numbers already made durable (Storage.storedSequences, at start). */
  stored?: Map<string, ReplayWindow>
  /** Refusals from one source within a window that raise a security event. */
  burst?: BurstOptions
  onSecurityEvent?: (e: SecurityEvent) => void
  /** Button presses and falls, the moment they are decoded (never behind a log commit or a telemetry batch). */
  onAlarm?: (a: AlarmNotice) => void
  /** Every message taken (the fleet view's last seen); a device status with its battery and firmware. */
  onAccepted?: (tenant: string, device: string, status: DeviceStatus | null, nowMs: number) => void
  /** Several nodes (src/cluster): shares each durable sequence number; the PUBACK waits for it. Never rejects. */
  marks?: { commit: (device: string, seq: bigint) => Promise<void> }
}

/** A refusal from this path or from the broker. */
export type RejectionInput = Refused

export interface Ingest {
  /** `expiryS`: the MQTT 5 Message Expiry Interval of the publish, if it had one (an alarm notice carries it). */
  ingest: (sender: Sender, topic: string, payload: Uint8Array, expiryS?: number) => Outcome
  /** Counts and records a refusal (from this path or from the broker: authentication, subscribe). */
  reject: (r: RejectionInput) => void
  /** Refusal tallies of live sources dropped at the burst detector's cap. */
  evicted: () => number
  /** Marks sequence numbers seen elsewhere (another node) as seen in the device's replay window, ascending. */
  learn: (device: string, seen: readonly bigint[]) => void
}

export function createIngest (deps: IngestDeps): Ingest {
  const { consent, storage, metrics } = deps
  const now = deps.now ?? Date.now
  const windows = new Map<string, ReplayWindow>()
  /** Messages taken and not yet durable, by device and sequence number (see checkReplay). */
  const onTheirWay = new Map<string, Promise<void>>()
  const bursts = new BurstDetector(deps.burst ?? { threshold: 20, windowMs: 60_000 }, (e) => {
    metrics.securityEvents++
    void storage.write('security_events', securityEventRow(e), 1).catch(() => {})
    deps.onSecurityEvent?.(e)
  })

  function windowOf (device: string): ReplayWindow {
    let w = windows.get(device)
    if (w === undefined) {
      w = deps.stored?.get(device) ?? new ReplayWindow()
      windows.set(device, w)
    }
    return w
  }

  // ── steps ────────────────────────────────────────────────────────────────

  /** The device the topic names: the sender itself, or a device bound to the sending gateway phone. */
  function authorizeTopic (sender: Sender, topic: string): [TelemetryTopic, DeviceRecord] | Refusal {
    const t = parseTopic(topic)
    if (t === null) return refuse(Reason.topic, 'topic is not v1/{tenant}/{device}/{stream}', true)
    if (t.tenant !== sender.record.tenant) return refuse(Reason.tenant, 'topic names another tenant', true)
    // revoked while connected (or with messages in flight): nothing more of it, or through it, is taken
    if (sender.record.revokedAtMs !== null) return refuse(Reason.revoked, 'device revoked', true)
    if (t.device === sender.record.device) return [t, sender.record]
    const target = deps.devices?.device(t.device)
    if (target === undefined || target.tenant !== t.tenant || target.gateway !== sender.record.device) {
      return refuse(Reason.device, 'topic names a device that is neither the sender nor bound to it', true)
    }
    if (target.revokedAtMs !== null) return refuse(Reason.revoked, 'the bound device is revoked')
    return [t, target]
  }

  function messageTime (p: Payload): number {
    switch (p.stream) {
      case 'vitals': return p.msg.windowStartMs
      case 'spot': return p.msg.measuredAtMs
      case 'alarm': return p.msg.occurredAtMs
      case 'status': return p.msg.reportedAtMs
    }
  }

  function openEnvelope (t: TelemetryTopic, payload: Uint8Array): Envelope | Refusal {
    const r = decodeEnvelope(payload)
    if (!r.ok) return refuse(r.reason, r.detail)
    if (r.value.deviceId !== t.device) return refuse(Reason.envelope, 'envelope names another device than the topic')
    return r.value
  }

  function checkReplay (w: ReplayWindow, env: Envelope): Refusal | null {
    return w.check(env.seq) ? null : refuse(Reason.replay, 'sequence number already seen or below the replay window')
  }

  function decrypt (record: DeviceRecord, t: TelemetryTopic, env: Envelope, nowMs: number): Buffer | Refusal {
    const key = record.keys.get(env.keyId)
    if (key === undefined) return refuse(Reason.unknownKey, `no payload key ${env.keyId} for this device`)
    if (key.notAfterMs !== null && key.notAfterMs < nowMs) return refuse(Reason.unknownKey, `payload key ${env.keyId} was rotated out`)
    const plain = open(key.aead, env.nonce, env.ciphertext, associatedData(t.tenant, t.device, t.stream, env.seq, env.keyId))
    return plain ?? refuse(Reason.decrypt, 'payload does not authenticate under the device key and associated data')
  }

  function decode (t: TelemetryTopic, plain: Uint8Array, nowMs: number): Payload | Refusal {
    const r = decodePayload(t.stream, plain, nowMs)
    return r.ok ? r.value : refuse(r.reason, r.detail)
  }

  function encodeRows (ctx: RowContext, p: Payload): [TableName, Encoded] {
    const table: TableName = STREAM_TABLE[p.stream]
    switch (p.stream) {
      case 'vitals': return [table, vitalRows(ctx, p.msg)]
      case 'spot': return [table, spotRows(ctx, p.msg)]
      case 'alarm': return [table, alarmRows(ctx, p.msg)]
      case 'status': return [table, statusRows(ctx, p.msg)]
    }
  }

  function write (table: TableName, enc: Encoded, sequence: Buffer, lane: Lane): Promise<void> {
    return enc.rows === 0
      ? storage.write('device_sequences', sequence, 1, undefined, lane).then(() => { void storage.write('device_heads', sequence, 1).catch(() => {}) })
      : storage.write(table, enc.chunk, enc.rows, sequence)
  }

  function batch (w: ReplayWindow, t: TelemetryTopic, seq: bigint, table: TableName, enc: Encoded, connected?: () => boolean): Promise<void> {
    w.accept(seq)
    const lane = laneOf(table)
    // the sequence number goes into the lane's log with the rows (what a restart restores the window from);
    // a message whose rows were all filtered still used it up (in its stream's lane), and is "queryable" once logged
    const sequence = sequenceRow(t.tenant, t.device, seq)
    if (enc.rows > 0) bump(metrics.rowsQueued, table, enc.rows)
    // alarms and status go straight to their own lane; bulk telemetry may wait for storage (admission.ts)
    const admitted = lane === 'bulk' && deps.admission !== undefined
      ? deps.admission.admit(t.tenant, Math.max(1, enc.rows), () => write(table, enc, sequence, lane), connected)
      : write(table, enc, sequence, lane)
    const key = `${t.device}/${seq}`
    const marks = deps.marks
    // one promise per message: the key leaves onTheirWay in the same handler (a second one only with marks)
    const stored = admitted.then(
      () => {
        bump(metrics.rowsStored, table, enc.rows)
        if (marks === undefined) onTheirWay.delete(key)
      },
      (err: unknown) => {
        onTheirWay.delete(key)
        // not made durable, so not acknowledged: let the device's resend through
        w.forget(seq)
        bump(metrics.unacknowledged, (err as { code?: string }).code ?? 'ING_ERR_STORAGE')
        throw err
      },
    )
    const durable = marks === undefined
      ? stored
      : stored.then(() => marks.commit(t.device, seq)).finally(() => { onTheirWay.delete(key) })
    onTheirWay.set(key, durable)
    return durable
  }

  // ── the path ─────────────────────────────────────────────────────────────

  // sampled step timing: one message in STAGE_SAMPLE, scaled up (metrics.ts)
  let sampleTurn = 0
  let mark = 0
  const stages = metrics.stageSeconds
  const lap = (stage: string): void => {
    if (mark === 0) return
    const at = performance.now()
    stages[stage] = (stages[stage] ?? 0) + (at - mark) * STAGE_SAMPLE / 1000
    mark = at
  }

  function run (sender: Sender, topic: string, payload: Uint8Array, expiryS: number | undefined): Outcome {
    mark = ++sampleTurn % STAGE_SAMPLE === 0 ? performance.now() : 0
    const addressed = authorizeTopic(sender, topic)
    if ('kind' in addressed) return addressed
    const [t, device] = addressed
    const env = openEnvelope(t, payload)
    if ('kind' in env) return env
    lap('authorize+envelope')
    const w = windowOf(t.device)
    const replay = checkReplay(w, env)
    if (replay !== null) {
      // a resend of a message still on its way (its connection closed before the PUBACK, e.g. while inserts
      // wait with VF_ACK_AFTER=store): answered when the first copy is durable, never before; if that fails,
      // so does this, and the next resend is taken
      const first = onTheirWay.get(`${t.device}/${env.seq}`)
      return first === undefined ? replay : { kind: 'stored', table: STREAM_TABLE[t.stream], rows: 0, filtered: 0, durable: first, resent: true }
    }
    const nowMs = now()
    const plain = decrypt(device, t, env, nowMs)
    if ('kind' in plain) return plain
    lap('replay+decrypt')
    const p = decode(t, plain, nowMs)
    if ('kind' in p) return p
    lap('decode')
    const patient = deps.devices === undefined ? device.patient : deps.devices.patientAt(device, messageTime(p))
    const gate = consent.gate(t.tenant, patient)
    const ctx: RowContext = { tenant: t.tenant, patient: patient ?? '', device: t.device, seq: env.seq, ingestedAt: nowMs, gate }
    lap('consent')
    const [table, enc] = encodeRows(ctx, p)
    lap('encode')
    const durable = batch(w, t, env.seq, table, enc, sender.connected)
    lap('log+admission')
    deps.onAccepted?.(t.tenant, t.device, p.stream === 'status' ? p.msg : null, nowMs)
    if (p.stream === 'alarm' && (p.msg.kind === AlarmKind.BUTTON_PRESS || p.msg.kind === AlarmKind.FALL_DETECTED) && deps.onAlarm !== undefined) {
      const loc = p.msg.location
      // the same cut as the stored row: a location the consent does not cover (measured before it began) is not relayed
      const located = loc != null && covers(gate('location'), p.msg.occurredAtMs)
      const notice: AlarmNotice = {
        tenant: t.tenant, device: t.device, seq: env.seq, patient, kind: p.msg.kind === AlarmKind.FALL_DETECTED ? 'fall_detected' : 'button_press',
        occurredAtMs: p.msg.occurredAtMs, ingestedAtMs: nowMs, location: located ? { latitude: loc.latitude, longitude: loc.longitude, accuracyM: loc.accuracyM } : null,
        ...(expiryS === undefined ? {} : { expiresAtMs: nowMs + expiryS * 1000 }),
      }
      // relayed now, on decode: it passed every check that refuses a message (topic, envelope, replay,
      // key, authenticity, range), so it is never one that was refused; its log commit (the priority
      // lane) and PUBACK follow. Should that commit fail, or the node die first, the device gets no
      // PUBACK and resends the same (device, seq), which a responder already de-duplicates by.
      deps.onAlarm(notice)
    }
    return { kind: 'stored', table, rows: enc.rows, filtered: enc.dropped, durable }
  }

  function reject (r: RejectionInput): void {
    bump(metrics.rejected, r.reason)
    const nowMs = now()
    bursts.note(r.tenant ?? '', r.device !== undefined && r.device !== '' ? r.device : `addr:${r.remoteAddress ?? ''}`, r.reason, nowMs)
    const row = rejectionRow({
      tenant: r.tenant ?? '', device: r.device ?? '', clientId: r.clientId ?? '', remoteAddress: r.remoteAddress ?? '',
      topic: r.topic ?? '', bytes: r.bytes ?? 0, reason: r.reason, detail: r.detail, ts: nowMs,
    })
    void storage.write('rejected_messages', row, 1).catch(() => {})
  }

  return {
    ingest (sender, topic, payload, expiryS) {
      const out = run(sender, topic, payload, expiryS)
      if (out.kind === 'stored') {
        if (out.resent === true) return out
        bump(metrics.accepted, out.table)
        metrics.rowsFiltered += out.filtered
      } else {
        reject({
          reason: out.reason, detail: out.detail, tenant: sender.record.tenant, device: sender.record.device, clientId: sender.clientId,
          remoteAddress: sender.remoteAddress, topic, bytes: payload.length,
        })
      }
      return out
    },
    reject,
    evicted: () => bursts.evicted,
    learn (device, seen) {
      const w = windowOf(device)
      for (const s of seen) if (w.check(s)) w.accept(s)
    },
  }
}
