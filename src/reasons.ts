/**
 * Every reason a message or connection is refused, with its stable code, in
 * one table. The codes are stored in rejected_messages and used as metric
 * labels. A leaf: the stage that refuses (crypto, decode, broker, pipeline)
 * takes its own group from here, and the pipeline records any of them.
 */

/** Payloads refused by the crypto stage. */
export const CryptoReason = {
  decrypt: 'ING_ERR_DECRYPT',
  replay: 'ING_ERR_REPLAY',
  unknownKey: 'ING_ERR_KEY',
} as const
export type CryptoReason = (typeof CryptoReason)[keyof typeof CryptoReason]

/** Payloads refused by the decode stage. */
export const DecodeReason = {
  envelope: 'ING_ERR_ENVELOPE',
  decode: 'ING_ERR_DECODE',
  range: 'ING_ERR_RANGE',
} as const
export type DecodeReason = (typeof DecodeReason)[keyof typeof DecodeReason]

/** Connections, subscriptions and publishes refused by the broker before the pipeline sees them. */
export const BrokerReason = {
  auth: 'ING_ERR_AUTH',
  clientId: 'ING_ERR_CLIENT_ID',
  subscribe: 'ING_ERR_SUBSCRIBE',
  size: 'ING_ERR_SIZE',
  protocol: 'ING_ERR_PROTOCOL',
  rate: 'ING_ERR_RATE',
  connLimit: 'ING_ERR_CONN_LIMIT',
  authBackoff: 'ING_ERR_AUTH_BACKOFF',
  authBusy: 'ING_ERR_AUTH_BUSY',
  revoked: 'ING_ERR_REVOKED',
  /** More QoS 1/2 messages unanswered than the window allows (MQTT 5 Receive Maximum; 3.1.1: QoS 2 awaiting PUBREL). */
  inflight: 'ING_ERR_INFLIGHT',
  /** An MQTT 5 Topic Alias of 0, above the advertised maximum, or never set. */
  topicAlias: 'ING_ERR_TOPIC_ALIAS',
  /** MQTT 5 properties beyond the node's limits (user property floods). */
  properties: 'ING_ERR_PROPERTIES',
} as const
export type BrokerReason = (typeof BrokerReason)[keyof typeof BrokerReason]

export const Reason = {
  ...CryptoReason,
  ...DecodeReason,
  ...BrokerReason,
  topic: 'ING_ERR_TOPIC',
  tenant: 'ING_ERR_TENANT',
  device: 'ING_ERR_DEVICE',
  storage: 'ING_ERR_STORAGE',
} as const
export type Reason = (typeof Reason)[keyof typeof Reason]

/** A refusal as it is counted and recorded: its reason and what is known of who sent what. */
export interface Refused<R extends Reason = Reason> {
  reason: R
  detail: string
  tenant?: string
  device?: string
  clientId?: string
  remoteAddress?: string
  topic?: string
  bytes?: number
}

/** Why a message could not be made durable now: the device keeps it and sends it again. Errors of the storage stage. */
export const DurabilityReason = {
  diskFull: 'ING_ERR_DISK_FULL',
  backpressure: 'ING_ERR_BACKPRESSURE',
  walIo: 'ING_ERR_WAL_IO',
  walClosed: 'ING_ERR_WAL_CLOSED',
  storage: 'ING_ERR_STORAGE',
  /** A cluster node that cannot confirm it has every consent change holds consent-based data back. */
  cluster: 'ING_ERR_CLUSTER',
  /** The connection closed while the message waited for storage (admission): nothing was written. */
  abandoned: 'ING_ERR_ABANDONED',
} as const
export type DurabilityReason = (typeof DurabilityReason)[keyof typeof DurabilityReason]

/** Not a refusal (nothing is recorded in rejected_messages): every value of the message was dropped for want of consent. */
export const CONSENT_FILTERED = 'ING_ERR_CONSENT'

/** The MQTT 5 reason codes the node sends (OASIS MQTT 5.0, 2.4), by name. */
export const Mqtt5Code = {
  success: 0x00,
  unspecified: 0x80,
  malformed: 0x81,
  protocolError: 0x82,
  implementationSpecific: 0x83,
  clientIdInvalid: 0x85,
  badCredentials: 0x86,
  notAuthorized: 0x87,
  serverUnavailable: 0x88,
  serverBusy: 0x89,
  receiveMaximumExceeded: 0x93,
  topicAliasInvalid: 0x94,
  packetTooLarge: 0x95,
  quotaExceeded: 0x97,
  payloadFormatInvalid: 0x99,
  connectionRateExceeded: 0x9f,
} as const

/**
 * What a device is told, per situation: the 3.1.1 answer and the MQTT 5 one, with the reason string
 * an MQTT 5 device gets. Reason strings are these fixed texts and nothing else: never a value from
 * the message, a patient id or a health value. docs/device-protocol.md §9 is generated from this
 * table (`npm run protocol-table`; test/device-answers.test.ts compares them).
 */
export interface DeviceAnswer {
  /** null: not a refusal (stored). */
  reason: Reason | DurabilityReason | typeof CONSENT_FILTERED | null
  when: string
  /** The MQTT 3.1.1 answer, as the protocol document states it. */
  v311: string
  /** The packet an MQTT 5 device gets; 'PUBACK+DISCONNECT': the PUBACK, then the connection is closed with the same code. */
  v5: 'CONNACK' | 'PUBACK' | 'PUBACK+DISCONNECT' | 'SUBACK' | 'DISCONNECT'
  code: number
  text: string
  should: string
}

export const DEVICE_ANSWERS = {
  stored: { reason: null, when: 'stored (the rows are in the write-ahead log)', v311: 'PUBACK', v5: 'PUBACK', code: Mqtt5Code.success, text: '', should: 'delete the frame' },
  authPassword: { reason: 'ING_ERR_AUTH', when: 'wrong or missing credentials (also a revoked device)', v311: 'CONNACK 4', v5: 'CONNACK', code: Mqtt5Code.badCredentials, text: 'bad user name or password', should: 'not retry with the same credentials; alert its owner' },
  authCertificate: { reason: 'ING_ERR_AUTH', when: 'client certificate names no enrolled device', v311: 'CONNACK 5', v5: 'CONNACK', code: Mqtt5Code.notAuthorized, text: 'certificate names no enrolled device', should: 'not retry with that certificate' },
  authFailed: { reason: 'ING_ERR_AUTH', when: 'the check itself failed', v311: 'CONNACK 5', v5: 'CONNACK', code: Mqtt5Code.unspecified, text: 'authentication failed', should: 'retry later with back-off' },
  authBackoff: { reason: 'ING_ERR_AUTH_BACKOFF', when: 'too many failed logins from this address', v311: 'CONNACK 5', v5: 'CONNACK', code: Mqtt5Code.connectionRateExceeded, text: 'too many failed logins from this address; back off', should: 'wait (exponential, up to 300 s), then retry' },
  authSourceBusy: { reason: 'ING_ERR_AUTH_BUSY', when: 'this address, which has failed before, has as many logins being checked as it may still fail', v311: 'CONNACK 3', v5: 'CONNACK', code: Mqtt5Code.connectionRateExceeded, text: 'too many logins from this address at once; retry shortly', should: 'retry after a pause' },
  authHashBusy: { reason: 'ING_ERR_AUTH_BUSY', when: 'every secret check slot is taken (VF_HASH_QUEUE)', v311: 'CONNACK 3', v5: 'CONNACK', code: Mqtt5Code.serverBusy, text: 'server busy checking logins; retry later', should: 'retry later with back-off' },
  clientId: { reason: 'ING_ERR_CLIENT_ID', when: 'client id ≠ device id (≠ the certificate\'s device)', v311: 'CONNACK 2', v5: 'CONNACK', code: Mqtt5Code.clientIdInvalid, text: 'client id must equal the device id', should: 'fix its configuration' },
  clusterLogin: { reason: 'ING_ERR_CLUSTER', when: 'a node of a cluster cannot read the device\'s replay marks (Redis out of reach), so it cannot tell a frame taken on another node from a new one', v311: 'CONNACK 3', v5: 'CONNACK', code: Mqtt5Code.serverUnavailable, text: 'node cannot reach its cluster; retry later', should: 'retry later with back-off (or another node)' },
  connLimit: { reason: 'ING_ERR_CONN_LIMIT', when: 'tenant at its connection limit', v311: 'CONNACK 3', v5: 'CONNACK', code: Mqtt5Code.quotaExceeded, text: 'tenant connection limit reached', should: 'retry later with back-off' },
  topic: { reason: 'ING_ERR_TOPIC', when: 'topic not `v1/{tenant}/{device}/{stream}` with a known stream', v311: 'disconnect, no PUBACK', v5: 'PUBACK+DISCONNECT', code: Mqtt5Code.notAuthorized, text: 'topic is not v1/{tenant}/{device}/{stream}', should: '**drop** the frame; fix the topic' },
  tenant: { reason: 'ING_ERR_TENANT', when: 'topic names another tenant', v311: 'disconnect, no PUBACK', v5: 'PUBACK+DISCONNECT', code: Mqtt5Code.notAuthorized, text: 'topic names another tenant', should: '**drop**; fix its configuration' },
  device: { reason: 'ING_ERR_DEVICE', when: 'topic names a device that is neither itself nor bound to it', v311: 'disconnect, no PUBACK', v5: 'PUBACK+DISCONNECT', code: Mqtt5Code.notAuthorized, text: 'topic names a device that is neither the sender nor bound to it', should: '**drop**; check the binding' },
  revokedSender: { reason: 'ING_ERR_REVOKED', when: 'the sending device was revoked while connected', v311: 'disconnect, no PUBACK', v5: 'PUBACK+DISCONNECT', code: Mqtt5Code.notAuthorized, text: 'device revoked', should: '**drop**; stop sending' },
  revokedBound: { reason: 'ING_ERR_REVOKED', when: 'the bound device a gateway publishes for is revoked', v311: 'PUBACK, recorded', v5: 'PUBACK', code: Mqtt5Code.notAuthorized, text: 'device revoked', should: '**drop**' },
  rate: { reason: 'ING_ERR_RATE', when: 'above the publish rate (§10)', v311: 'disconnect, no PUBACK', v5: 'PUBACK+DISCONNECT', code: Mqtt5Code.quotaExceeded, text: 'publish rate limit exceeded; retry later', should: 'keep, reconnect after a pause, send slower' },
  envelope: { reason: 'ING_ERR_ENVELOPE', when: 'envelope undecodable, version ≠ 1, device id ≠ topic, nonce ≠ 24 bytes, payload > 256 KiB', v311: 'PUBACK, recorded', v5: 'PUBACK', code: Mqtt5Code.payloadFormatInvalid, text: 'envelope not valid', should: '**drop** (a bug to fix)' },
  replay: { reason: 'ING_ERR_REPLAY', when: 'seq already seen or below the window', v311: 'PUBACK, recorded', v5: 'PUBACK', code: Mqtt5Code.notAuthorized, text: 'sequence number already seen', should: '**drop**; if unexpected, its counter went back' },
  unknownKey: { reason: 'ING_ERR_KEY', when: 'unknown key id, or a rotated-out key', v311: 'PUBACK, recorded', v5: 'PUBACK', code: Mqtt5Code.notAuthorized, text: 'payload key unknown or rotated out', should: '**drop**; fetch its current key' },
  decrypt: { reason: 'ING_ERR_DECRYPT', when: 'does not authenticate: key, associated data, nonce or bytes wrong', v311: 'PUBACK, recorded', v5: 'PUBACK', code: Mqtt5Code.notAuthorized, text: 'payload does not authenticate', should: '**drop**; check §5 against the test vectors' },
  decode: { reason: 'ING_ERR_DECODE', when: 'payload is not the stream\'s protobuf message', v311: 'PUBACK, recorded', v5: 'PUBACK', code: Mqtt5Code.payloadFormatInvalid, text: 'payload does not decode', should: '**drop** (a bug)' },
  range: { reason: 'ING_ERR_RANGE', when: 'a value or time outside §8', v311: 'PUBACK, recorded', v5: 'PUBACK', code: Mqtt5Code.payloadFormatInvalid, text: 'a value or time is out of range', should: '**drop**; check its clock and sensors' },
  consent: { reason: CONSENT_FILTERED, when: 'every value of the message was dropped for want of the patient\'s consent (its sequence number is kept)', v311: 'PUBACK', v5: 'PUBACK', code: Mqtt5Code.notAuthorized, text: 'no consent covers this data', should: '**drop**; nothing to fix on the device' },
  subscribe: { reason: 'ING_ERR_SUBSCRIBE', when: 'subscription outside its `cmd` topic', v311: 'SUBACK 0x80', v5: 'SUBACK', code: Mqtt5Code.notAuthorized, text: '', should: 'not subscribe there' },
  size: { reason: 'ING_ERR_SIZE', when: 'MQTT packet above `VF_MAX_PACKET_BYTES` (the Maximum Packet Size in CONNACK), or CONNECT above 4096 bytes', v311: 'disconnect before reading it', v5: 'DISCONNECT', code: Mqtt5Code.packetTooLarge, text: '', should: '**drop**; send smaller batches' },
  protocol: { reason: 'ING_ERR_PROTOCOL', when: 'not MQTT (first packet not CONNECT, a second CONNECT, bad length)', v311: 'disconnect', v5: 'DISCONNECT', code: Mqtt5Code.protocolError, text: '', should: 'fix the client' },
  inflight: { reason: 'ING_ERR_INFLIGHT', when: 'more unanswered QoS 1/2 publishes than the Receive Maximum in CONNACK (3.1.1: more than 100 QoS 2 awaiting PUBREL)', v311: 'disconnect', v5: 'DISCONNECT', code: Mqtt5Code.receiveMaximumExceeded, text: '', should: 'keep at most that many in flight' },
  topicAlias: { reason: 'ING_ERR_TOPIC_ALIAS', when: 'Topic Alias 0, above the Topic Alias Maximum in CONNACK, or never set (MQTT 5 only)', v311: '—', v5: 'DISCONNECT', code: Mqtt5Code.topicAliasInvalid, text: '', should: 'fix the client' },
  properties: { reason: 'ING_ERR_PROPERTIES', when: 'more than 16 user properties or 1024 bytes of them on a CONNECT or PUBLISH (MQTT 5 only)', v311: '—', v5: 'DISCONNECT', code: Mqtt5Code.implementationSpecific, text: '', should: 'send fewer properties' },
  diskFull: { reason: 'ING_ERR_DISK_FULL', when: 'the node\'s disk is full', v311: '**no PUBACK**, connection dropped', v5: 'PUBACK', code: Mqtt5Code.quotaExceeded, text: 'node busy: not stored; send it again later', should: '**keep and resend** after a pause (back-off)' },
  backpressure: { reason: 'ING_ERR_BACKPRESSURE', when: 'storage is behind and the write-ahead log is at its budget', v311: '**no PUBACK**, connection dropped', v5: 'PUBACK', code: Mqtt5Code.quotaExceeded, text: 'node busy: not stored; send it again later', should: '**keep and resend** after a pause (back-off)' },
  walIo: { reason: 'ING_ERR_WAL_IO', when: 'a write-ahead log write failed', v311: '**no PUBACK**, connection dropped', v5: 'PUBACK', code: Mqtt5Code.unspecified, text: 'not stored; send it again later', should: '**keep and resend** after a pause (back-off)' },
  walClosed: { reason: 'ING_ERR_WAL_CLOSED', when: 'the node is stopping', v311: '**no PUBACK**, connection dropped', v5: 'PUBACK', code: Mqtt5Code.unspecified, text: 'not stored; send it again later', should: '**keep and resend** after reconnecting' },
  cluster: { reason: 'ING_ERR_CLUSTER', when: 'a node of a cluster that cannot confirm it has every consent change (Redis out of reach), for consent-based data', v311: '**no PUBACK**, connection dropped', v5: 'PUBACK', code: Mqtt5Code.unspecified, text: 'not stored; send it again later', should: '**keep and resend** after a pause (back-off)' },
  abandoned: { reason: 'ING_ERR_ABANDONED', when: 'the connection closed while the message waited for storage', v311: 'nothing (no connection)', v5: 'PUBACK', code: Mqtt5Code.unspecified, text: 'not stored; send it again later', should: '**keep and resend** after reconnecting' },
  storage: { reason: 'ING_ERR_STORAGE', when: 'any other failure to store', v311: '**no PUBACK**, connection dropped', v5: 'PUBACK', code: Mqtt5Code.unspecified, text: 'not stored; send it again later', should: '**keep and resend** after a pause (back-off)' },
} as const satisfies Record<string, DeviceAnswer>
export type DeviceAnswerKey = keyof typeof DEVICE_ANSWERS

/** The answer to a publish the ingest path refused, by its reason (and, for a revocation, whether the sender itself is revoked). */
export const PUBLISH_ANSWER: Partial<Record<Reason, DeviceAnswerKey>> = {
  ING_ERR_TOPIC: 'topic', ING_ERR_TENANT: 'tenant', ING_ERR_DEVICE: 'device', ING_ERR_RATE: 'rate',
  ING_ERR_ENVELOPE: 'envelope', ING_ERR_REPLAY: 'replay', ING_ERR_KEY: 'unknownKey', ING_ERR_DECRYPT: 'decrypt',
  ING_ERR_DECODE: 'decode', ING_ERR_RANGE: 'range',
}

/** The answer to a publish that could not be made durable, by the storage error's code. */
export function durabilityAnswer (code: unknown): DeviceAnswerKey {
  switch (code) {
    case DurabilityReason.diskFull: return 'diskFull'
    case DurabilityReason.backpressure: return 'backpressure'
    case DurabilityReason.walIo: return 'walIo'
    case DurabilityReason.walClosed: return 'walClosed'
    case DurabilityReason.cluster: return 'cluster'
    case DurabilityReason.abandoned: return 'abandoned'
    default: return 'storage'
  }
}
