#!/usr/bin/env python3
"""A reference vitalflow device, written from docs/device-protocol.md alone.

It shares no code with the node. It needs Debian's python3-nacl (XChaCha20-
Poly1305), python3-paho-mqtt (MQTT 3.1.1 or, with --mqtt5, MQTT 5 over TLS)
and python3-protobuf (the message classes in vitalflow_pb/, generated from
proto/ by generate.sh).

    # check our encoding and sealing against the published test vectors
    /usr/bin/python3 device.py --vectors ../../docs/test-vectors.json --verify-only

    # seal and publish one message per stream at QoS 1; exit 1 if a PUBACK is missing
    /usr/bin/python3 device.py --vectors ../../docs/test-vectors.json \\
        --host localhost --port 8883 --ca ca.crt \\
        --tenant care-north --device cal-0001 --secret '<secret>' \\
        --key '<payload key, base64url>' --key-id 1 --state cal-0001.state.json

With --mqtt5 every PUBACK's reason code (and reason string) is printed: 0x00
stored; 0x97 or 0x80 not stored now (the frame is kept and resent next run);
any other code refused for good (the frame is dropped, never resent).

Exit codes: 0 all published and stored; 1 a PUBACK is missing or refused the
frame (kept frames are resent on the next run); 2 a test vector does not
match; 3 the connection was refused or failed.
"""

import argparse
import base64
import binascii
import json
import os
import ssl
import struct
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "vitalflow_pb"))

from google.protobuf import json_format  # noqa: E402
from nacl.bindings import (  # noqa: E402
    crypto_aead_xchacha20poly1305_ietf_decrypt,
    crypto_aead_xchacha20poly1305_ietf_encrypt,
)
import paho.mqtt.client as mqtt  # noqa: E402

import calarm_pb2  # noqa: E402
import corsano_pb2  # noqa: E402
import cvitals_pb2  # noqa: E402
import envelope_pb2  # noqa: E402
import status_pb2  # noqa: E402

MESSAGE = {
    "vitals": corsano_pb2.BraceletBatch,
    "spot": cvitals_pb2.SpotMeasurement,
    "alarm": calarm_pb2.AlarmEvent,
    "status": status_pb2.DeviceStatus,
}
MAX_SEQ = 2**64 - 1


def associated_data(tenant, device, stream, seq, key_id):
    """b"vf1" 0x00 tenant 0x00 device 0x00 stream 0x00 seq (u64 BE) key_id (u32 BE)."""
    if not 0 <= seq <= MAX_SEQ:
        raise ValueError("seq must be within 0 .. 2^64 - 1")
    ids = b"\x00".join(s.encode("ascii") for s in ("vf1", tenant, device, stream))
    return ids + b"\x00" + seq.to_bytes(8, "big") + key_id.to_bytes(4, "big")


def seal(key, tenant, device, stream, seq, key_id, plaintext, nonce=None):
    """The MQTT payload: an Envelope around the XChaCha20-Poly1305 sealed payload."""
    if nonce is None:
        nonce = os.urandom(24)  # fresh and random for every frame
    ad = associated_data(tenant, device, stream, seq, key_id)
    ciphertext = crypto_aead_xchacha20poly1305_ietf_encrypt(plaintext, ad, nonce, key)
    env = envelope_pb2.Envelope(version=1, device_id=device, seq=seq, key_id=key_id, nonce=nonce, ciphertext=ciphertext)
    return env.SerializeToString()


def decode_key(text):
    """A payload key as enrollment prints it: 32 bytes, base64url without padding."""
    key = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    if len(key) != 32:
        raise ValueError("payload key must be 32 bytes")
    return key


def verify_vectors(path):
    """Checks every published vector both ways; returns the number of mismatches."""
    with open(path, encoding="utf-8") as f:
        vectors = json.load(f)["vectors"]
    bad = 0
    for v in vectors:
        h = binascii.unhexlify
        key = decode_key(v["key_base64url"])
        seq = int(v["seq"])
        problems = []
        if key.hex() != v["key_hex"]:
            problems.append("key encoding")
        msg = json_format.ParseDict(v["message"], MESSAGE[v["stream"]]())
        plaintext = msg.SerializeToString()
        if plaintext.hex() != v["plaintext_hex"]:
            problems.append("payload protobuf bytes")
        ad = associated_data(v["tenant"], v["device"], v["stream"], seq, v["key_id"])
        if ad.hex() != v["associated_data_hex"]:
            problems.append("associated data")
        payload = seal(key, v["tenant"], v["device"], v["stream"], seq, v["key_id"], plaintext, h(v["nonce_hex"]))
        if payload.hex() != v["mqtt_payload_hex"]:
            problems.append("MQTT payload")
        # and the other way: open the published payload
        env = envelope_pb2.Envelope.FromString(h(v["mqtt_payload_hex"]))
        if env.ciphertext.hex() != v["ciphertext_hex"] or env.seq != seq:
            problems.append("envelope fields")
        opened = crypto_aead_xchacha20poly1305_ietf_decrypt(env.ciphertext, ad, env.nonce, key)
        if opened.hex() != v["plaintext_hex"]:
            problems.append("opened plaintext")
        print(json.dumps({"vector": v["name"], "ok": not problems, "mismatch": problems}))
        bad += 1 if problems else 0
    return bad


def now_ms():
    return int(time.time() * 1000)


def sample_message(stream, t):
    """One plausible message per stream, timed now (the node refuses times more than 24 h ahead or before 2015)."""
    if stream == "vitals":
        return corsano_pb2.BraceletBatch(
            window_start_ms=t - 60_000, window_ms=60_000,
            heart_rate=corsano_pb2.Series(offset_ms=0, interval_ms=15_000, values=[71, 72, 72.5, 70]),
            heart_rate_quality=[4, 4, 3, 4],
            spo2=corsano_pb2.Series(offset_ms=30_000, interval_ms=60_000, values=[97]),
            battery_percent=77,
        )
    if stream == "spot":
        return cvitals_pb2.SpotMeasurement(measured_at_ms=t, meter_model="A&D UA-651BLE", systolic=131, diastolic=84, pulse=68)
    if stream == "alarm":
        return calarm_pb2.AlarmEvent(occurred_at_ms=t, kind=calarm_pb2.ALARM_KIND_HEARTBEAT, battery_percent=76)
    return status_pb2.DeviceStatus(reported_at_ms=t, model="python-reference", firmware="1.0.0", serial_number="PY-0001",
                                   battery_percent=76, last_sync_ms=t - 3_600_000, diagnostics=["reference device"])


class State:
    """The device's next sequence number and its unacknowledged frames, on disk.

    The counter is written before a frame leaves, so a restart never reuses a
    sequence number; a frame without a PUBACK stays here and is resent as is
    (same seq, same nonce, same bytes).
    """

    def __init__(self, path, first_seq):
        self.path = path
        self.next_seq = first_seq
        self.pending = []  # [{"topic", "payload_hex", "seq"}]
        if path and os.path.exists(path):
            with open(path, encoding="utf-8") as f:
                saved = json.load(f)
            self.next_seq = max(first_seq, int(saved["next_seq"]))
            self.pending = saved.get("pending", [])

    def take_seq(self):
        seq = self.next_seq
        if seq > MAX_SEQ:
            raise OverflowError("sequence numbers used up for this device id")
        self.next_seq = seq + 1
        return seq

    def save(self):
        if not self.path:
            return
        tmp = self.path + ".tmp"
        with open(tmp, "w", encoding="utf-8") as f:
            json.dump({"next_seq": str(self.next_seq), "pending": self.pending}, f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, self.path)


# MQTT 5 PUBACK reason codes that mean "not stored now, send it again later" (docs/device-protocol.md §9)
RESEND_LATER = (0x80, 0x97)


class Mqtt5Client(mqtt.Client):
    """paho 1.x reads an MQTT 5 PUBACK's reason code and properties and drops them: keep them per message id."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.acks = {}  # mid -> (reason code, reason string or None)

    def _handle_pubackcomp(self, cmd):
        packet = self._in_packet["packet"]
        if cmd == "PUBACK" and len(packet) >= 2:
            mid, = struct.unpack("!H", packet[:2])
            code = packet[2] if len(packet) > 2 else 0
            text = None
            if len(packet) > 3:
                props = mqtt.Properties(mqtt.PUBACK >> 4)
                props.unpack(packet[3:])
                text = getattr(props, "ReasonString", None)
            self.acks[mid] = (code, text)
        return super()._handle_pubackcomp(cmd)


def tampered(kind, payload):
    """For trying the node's refusals: a frame whose tag no longer verifies, or no envelope at all."""
    if kind == "decrypt":
        return payload[:-1] + bytes([payload[-1] ^ 1])
    if kind == "envelope":
        return b"not an envelope"
    return payload


def publish(args, key, state):
    if args.mqtt5:
        client = Mqtt5Client(client_id=args.device, protocol=mqtt.MQTTv5)
    else:
        client = mqtt.Client(client_id=args.device, clean_session=True, protocol=mqtt.MQTTv311)
    if args.cert:
        # mutual TLS: the certificate is the credential; no password
        client.tls_set(ca_certs=args.ca, certfile=args.cert, keyfile=args.keyfile, tls_version=ssl.PROTOCOL_TLS_CLIENT)
    else:
        client.username_pw_set(args.device, args.secret)
        client.tls_set(ca_certs=args.ca, tls_version=ssl.PROTOCOL_TLS_CLIENT)
    connected = {}

    def on_connect(_c, _u, _flags, rc, _props=None):
        # MQTT 5: a ReasonCodes object (0 = success; 0x86 bad user name or password, 0x9F back off, ...)
        connected["rc"] = rc.value if hasattr(rc, "value") else rc

    client.on_connect = on_connect
    try:
        if args.mqtt5:
            client.connect(args.host, args.port, keepalive=30, clean_start=True)
        else:
            client.connect(args.host, args.port, keepalive=30)
    except (OSError, ssl.SSLError) as e:
        print(json.dumps({"connect": "failed", "error": str(e)}))
        return 3
    client.loop_start()
    deadline = time.time() + args.timeout
    while "rc" not in connected and time.time() < deadline:
        time.sleep(0.02)
    if connected.get("rc") != 0:
        print(json.dumps({"connect": "refused", "rc": connected.get("rc")}))
        client.loop_stop()
        return 3

    # first what an earlier run sent without a PUBACK (backfill, oldest first), then one new frame per stream
    frames = list(state.pending)
    for stream in args.streams:
        msg = sample_message(stream, now_ms())
        seq = state.take_seq()
        topic = "v1/%s/%s/%s" % (args.tenant, args.device, stream)
        payload = seal(key, args.tenant, args.device, stream, seq, args.key_id, msg.SerializeToString())
        frames.append({"topic": topic, "payload_hex": payload.hex(), "seq": str(seq)})
    state.pending = frames
    state.save()

    missing = 0
    for fr in frames:
        info = client.publish(fr["topic"], tampered(args.tamper, binascii.unhexlify(fr["payload_hex"])), qos=1)
        info.wait_for_publish(timeout=args.timeout)
        acked = info.is_published()
        line = {"topic": fr["topic"], "seq": fr["seq"], "puback": acked}
        keep = not acked
        if acked and args.mqtt5:
            code, text = client.acks.pop(info.mid, (0, None))
            line["reason_code"] = code
            if text is not None:
                line["reason_string"] = text
            # refused for good: drop it (resending would be refused again); not stored now: keep it
            keep = code in RESEND_LATER
            if code != 0:
                missing += 1
        print(json.dumps(line))
        if not keep:
            state.pending = [p for p in state.pending if p is not fr]
        elif not acked:
            missing += 1
    state.save()
    client.disconnect()
    client.loop_stop()
    return 1 if missing else 0


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--vectors", required=True, help="docs/test-vectors.json")
    p.add_argument("--verify-only", action="store_true")
    p.add_argument("--host", default="localhost")
    p.add_argument("--port", type=int, default=8883)
    p.add_argument("--ca", help="CA certificate the server's certificate chains to")
    p.add_argument("--tenant")
    p.add_argument("--device")
    p.add_argument("--secret", help="device secret (password login)")
    p.add_argument("--cert", help="client certificate (mutual TLS, port 8884) instead of a secret")
    p.add_argument("--keyfile", help="private key of --cert")
    p.add_argument("--key", help="payload key, base64url, as enrollment printed it")
    p.add_argument("--key-id", type=int, default=1)
    p.add_argument("--seq", type=int, default=1, help="first sequence number if the state file has none")
    p.add_argument("--state", help="file keeping the next sequence number and unacknowledged frames")
    p.add_argument("--streams", nargs="+", default=["vitals", "spot", "alarm", "status"], choices=sorted(MESSAGE))
    p.add_argument("--timeout", type=float, default=10.0, help="seconds to wait for CONNACK and for each PUBACK")
    p.add_argument("--mqtt5", action="store_true", help="speak MQTT 5 and report each PUBACK's reason code")
    p.add_argument("--tamper", choices=["none", "decrypt", "envelope"], default="none", help="send frames the node must refuse")
    args = p.parse_args()

    if verify_vectors(args.vectors) != 0:
        return 2
    if args.verify_only:
        return 0
    for need in ("ca", "tenant", "device", "key"):
        if getattr(args, need) is None:
            p.error("--%s is required to publish" % need)
    if args.cert is None and args.secret is None:
        p.error("--secret or --cert is required to publish")
    return publish(args, decode_key(args.key), State(args.state, args.seq))


if __name__ == "__main__":
    sys.exit(main())
