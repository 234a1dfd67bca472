"""A stand-in for neonize's Go library that answers as whatsmeow does, for the real neonize client.

Only the lowest seam is replaced: the object at `client._NewClient__client` (neonize's `gocode` CDLL),
which neonize's Python code calls for every Go function. Each function here takes the arguments that
neonize passes (see neonize/_binder.py) and returns what the library's ctypes `errcheck` hands back: the
bytes of the serialized `*ReturnFunction` protobuf, an error string as bytes (b"" for none), or a bool.
Events go back the way Go sends them: serialized Neonize_pb2 messages through the ctypes callbacks that
`connect()` passed to `Neonize`, and only for the event codes the client subscribed to.

The outside world (the phone, WhatsApp's servers) is driven by the methods named for what happens there
(`pair`, `lose_connection`, `unlink_from_phone`, ...). Any Go function not stood in here is recorded in
`unexpected` and fails the call: a test asserts it stayed empty (no group lookup, nothing unforeseen).
"""

import ctypes
import hashlib
import hmac
import os
import re
import secrets
import threading
import time

from cryptography.hazmat.primitives import hashes, padding
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

# whatsmeow's errors, as their text reaches Python.
ERR_CLIENT_IS_NIL = "client is nil"
ERR_NOT_CONNECTED = "websocket not connected"
ERR_NOT_LOGGED_IN = "the store doesn't contain a device JID"
ERR_TOO_SHORT = "phone number too short"
ERR_NOT_INTERNATIONAL = "international phone number required (must not start with 0)"
PAIRING_ALPHABET = "123456789ABCDEFGHJKLMNPQRSTVWXYZ"
# neonize's MediaType values -> the HKDF info whatsmeow derives the media keys with.
MEDIA_KEY_INFO = {0: b"WhatsApp Image Keys", 1: b"WhatsApp Video Keys", 2: b"WhatsApp Audio Keys",
                  3: b"WhatsApp Document Keys"}
MEDIA_TYPE_OF_MESSAGE = {"image": 0, "document": 3}  # the media type a message's recipient decrypts with
DEBUG_TIMINGS = ("Queue", "Marshal", "GetParticipants", "GetDevices", "GroupEncrypt", "PeerEncrypt", "Send",
                 "Resp", "Retry")


def pb():
    from neonize.proto import Neonize_pb2

    return Neonize_pb2


def jid(user: str, server: str = "s.whatsapp.net", device: int = 0):
    return pb().JID(User=user, Server=server, Device=device, RawAgent=0, Integrator=0, IsEmpty=not user)


def message_source(chat: str, sender: str, from_me: bool):
    return pb().MessageSource(
        Chat=jid(chat), Sender=jid(sender), IsFromMe=from_me, IsGroup=False,
        SenderAlt=jid(""), RecipientAlt=jid(""), BroadcastListOwner=jid(""),
    )


def media_keys(media_key: bytes, media_type: int) -> tuple[bytes, bytes, bytes]:
    """whatsmeow's getMediaKeys: (iv, cipher key, mac key)."""
    expanded = HKDF(hashes.SHA256(), 112, None, MEDIA_KEY_INFO[media_type]).derive(media_key)
    return expanded[:16], expanded[16:48], expanded[48:80]


def encrypt_media(data: bytes, media_key: bytes, media_type: int) -> bytes:
    """What whatsmeow's Upload sends to WhatsApp's media servers: AES-CBC, then a 10-byte HMAC."""
    iv, cipher_key, mac_key = media_keys(media_key, media_type)
    padder = padding.PKCS7(128).padder()
    encryptor = Cipher(algorithms.AES(cipher_key), modes.CBC(iv)).encryptor()
    ciphertext = encryptor.update(padder.update(data) + padder.finalize()) + encryptor.finalize()
    return ciphertext + hmac.new(mac_key, iv + ciphertext, hashlib.sha256).digest()[:10]


def decrypt_media(blob: bytes, media_key: bytes, media_type: int) -> bytes:
    """What the recipient's phone does with a downloaded file; a wrong key or blob fails."""
    iv, cipher_key, mac_key = media_keys(media_key, media_type)
    ciphertext, mac = blob[:-10], blob[-10:]
    assert hmac.compare_digest(mac, hmac.new(mac_key, iv + ciphertext, hashlib.sha256).digest()[:10])
    decryptor = Cipher(algorithms.AES(cipher_key), modes.CBC(iv)).decryptor()
    unpadder = padding.PKCS7(128).unpadder()
    return unpadder.update(decryptor.update(ciphertext) + decryptor.finalize()) + unpadder.finalize()


def run_on(backend, go: "GoStandIn") -> threading.Thread:
    """A NeonizeBackend's real client on this stand-in: create_client(), then run() in a thread, which
    connects (Neonize) and blocks until stopped."""
    client = backend.client or backend.create_client()
    client._NewClient__client = go
    thread = threading.Thread(target=backend.run, name="neonize-run", daemon=True)
    thread.start()
    assert go.started.wait(10), "connect() never reached Go"
    return thread


class GoStandIn:
    """One client's Go side. `phone`: the device whatsmeow's store holds (None: not linked yet)."""

    def __init__(self, phone: str | None = None, unregistered=(), jids: dict[str, str] | None = None,
                 announce_device: bool = True):
        self.device: str | None = phone
        self.unregistered = {n.lstrip("+") for n in unregistered}
        self.jids = jids or {}  # number -> the user of the JID WhatsApp answers (e.g. Mexico's extra 1)
        self.announce_device = announce_device  # Go sends the stored device before connecting
        self.calls: list[str] = []
        self.unexpected: list[str] = []
        self.fail: dict[str, str] = {}  # function name -> the error whatsmeow answers with
        self.uploads: dict[str, tuple[int, bytes, bytes]] = {}  # direct path -> (media type, plaintext, blob)
        self.sent: list[tuple] = []  # (JID, waE2E.Message) as SendMessage received them
        self.acks: list = []  # the SendResponse of each
        self.lookups: list[list[str]] = []  # the numbers of each IsOnWhatsApp
        self.pairings: list = []  # PairPhoneParams
        self.codes: list[str] = []  # the pairing codes handed out
        self.in_go_map = False  # between Neonize and Stop: Go knows the client
        self.socket = False  # whatsmeow's websocket (IsConnected)
        self.started = threading.Event()
        self._stopped = threading.Event()
        self._subscribed: set[int] = set()
        self._qr_callback = self._event_callback = None
        self._uuid = b""
        self._qr_count = 0

    def __getattr__(self, name: str):
        if name.startswith("_"):
            raise AttributeError(name)
        self.unexpected.append(name)
        raise AssertionError(f"unexpected Go call {name}")

    # ----- the Go functions neonize calls ------------------------------------------------------------

    def Neonize(self, name, uuid, jid_bytes, jid_size, new_device, log_level, qr_callback, login_callback,
                event_callback, log_callback, subscribers, subscribers_size, props, props_size, pair_phone,
                pair_phone_size, proxy):
        """connect(): the client runs until Stop. A stored device connects; otherwise the QR codes start."""
        self.calls.append("Neonize")
        self._uuid, self._qr_callback, self._event_callback = uuid, qr_callback, event_callback
        self._subscribed = set(bytes(subscribers)[:subscribers_size])
        self._stopped.clear()
        self.in_go_map = self.socket = True
        if self.device is not None:
            if self.announce_device:
                self._device_event()
            self.deliver(pb().Connected(status=True))
        else:
            self.show_qr()
        self.started.set()  # connected, or showing the first QR
        self._stopped.wait()
        return b""

    def Stop(self, uuid):
        self.calls.append("Stop")
        self.in_go_map = self.socket = False
        self._stopped.set()
        return b""

    def IsConnected(self, uuid):
        self.calls.append("IsConnected")
        return self.in_go_map and self.socket

    def GetMe(self, uuid):
        self.calls.append("GetMe")
        if not (self.in_go_map and self.socket):  # neonize dereferences a missing client: the process dies
            self.unexpected.append("GetMe while not connected")
            raise AssertionError("GetMe on a client that is not connected aborts the process")
        return self._device().SerializeToString()

    def IsOnWhatsApp(self, uuid, numbers, size):
        self.calls.append("IsOnWhatsApp")
        queries = numbers[:size].decode().split(" ")
        self.lookups.append(queries)
        answer = pb().IsOnWhatsAppReturnFunction()
        if error := self._refusal("IsOnWhatsApp"):
            answer.Error = error
            return answer.SerializeToString()
        for query in queries:
            digits = re.sub(r"\D", "", query)
            # WhatsApp knows a number only in international form, with its '+'.
            known = query.startswith("+") and digits not in self.unregistered
            answer.IsOnWhatsAppResponse.add(Query=query, JID=jid(self.jids.get(digits, digits)), IsIn=known)
        return answer.SerializeToString()

    def Upload(self, uuid, data, size, media_type):
        self.calls.append("Upload")
        answer = pb().UploadReturnFunction()
        if error := self._refusal("Upload"):
            answer.Error = f"failed to refresh media connections: {error}"
            return answer.SerializeToString()
        plaintext = bytes(data[:size])
        media_key = os.urandom(32)
        blob = encrypt_media(plaintext, media_key, media_type)
        path = f"/v/t62.7119-24/{secrets.randbelow(10**8)}_{secrets.token_hex(8)}_n.enc"
        self.uploads[path] = (media_type, plaintext, blob)
        answer.UploadResponse.CopyFrom(pb().UploadResponse(
            url=f"https://mmg.whatsapp.net{path}?ccb=11-4", DirectPath=path, Handle="", MediaKey=media_key,
            FileEncSHA256=hashlib.sha256(blob).digest(), FileSHA256=hashlib.sha256(plaintext).digest(),
            FileLength=len(plaintext),
        ))
        return answer.SerializeToString()

    def SendMessage(self, uuid, to, to_size, message, message_size):
        from neonize.proto.waE2E.WAWebProtobufsE2E_pb2 import Message

        self.calls.append("SendMessage")
        answer = pb().SendMessageReturnFunction()
        if error := self._refusal("SendMessage"):
            answer.Error = error
            return answer.SerializeToString()
        self.sent.append((pb().JID.FromString(to[:to_size]), Message.FromString(message[:message_size])))
        answer.SendResponse.CopyFrom(pb().SendResponse(
            Timestamp=int(time.time()), ID="3EB0" + secrets.token_hex(9).upper(), ServerID=0,
            DebugTimings=pb().MessageDebugTimings(**{name: 0 for name in DEBUG_TIMINGS}),
        ))
        self.acks.append(answer.SendResponse)
        return answer.SerializeToString()

    def PairPhone(self, uuid, payload, size):
        self.calls.append("PairPhone")
        params = pb().PairPhoneParams.FromString(payload[:size])
        self.pairings.append(params)
        answer = pb().PairPhoneReturnFunction()
        digits = re.sub(r"\D", "", params.phone)
        if not self.in_go_map:
            answer.Error = ERR_CLIENT_IS_NIL
        elif len(digits) <= 6:
            answer.Error = ERR_TOO_SHORT
        elif digits.startswith("0"):
            answer.Error = ERR_NOT_INTERNATIONAL
        elif error := self._refusal("PairPhone"):
            answer.Error = error
        else:
            code = "".join(secrets.choice(PAIRING_ALPHABET) for _ in range(8))
            answer.Code = f"{code[:4]}-{code[4:]}"
            self.codes.append(answer.Code)
        return answer.SerializeToString()

    def Logout(self, uuid):
        """whatsmeow's Logout: tells WhatsApp, disconnects, deletes the device; emits no event."""
        self.calls.append("Logout")
        if not self.in_go_map:
            return ERR_CLIENT_IS_NIL.encode()
        if self.device is None:
            return ERR_NOT_LOGGED_IN.encode()
        if error := self._refusal("Logout"):
            return f"error sending logout request: {error}".encode()
        self.socket = False
        self.device = None
        return b""

    def _refusal(self, name: str) -> str:
        return ERR_NOT_CONNECTED if not (self.in_go_map and self.socket) else self.fail.get(name, "")

    # ----- what happens on the phone and on WhatsApp's side -------------------------------------------

    def deliver(self, message, code: int | None = None) -> None:
        """An event, the way Go sends it (only for the codes the client subscribed to)."""
        from neonize.events import EVENT_TO_INT

        code = EVENT_TO_INT[type(message)] if code is None else code
        if code != 0 and code not in self._subscribed:
            return
        data = message.SerializeToString()
        buffer = ctypes.create_string_buffer(data, len(data) or 1)
        self._event_callback(self._uuid, ctypes.addressof(buffer), len(data), code)

    def show_qr(self) -> str:
        """The next QR code, shaped like whatsmeow's: ref, noise key, identity key, adv secret."""
        self._qr_count += 1
        code = "2@" + ",".join(secrets.token_urlsafe(n) for n in (48, 32, 32, 32))
        buffer = ctypes.create_string_buffer(code.encode())
        self._qr_callback(self._uuid, ctypes.addressof(buffer))
        return code

    def pair(self, phone: str) -> None:
        """The phone scanned the code (or entered the pairing code): PairSuccess, then the new login."""
        self.device = phone
        self.deliver(pb().PairStatus(ID=jid(phone, device=12), BusinessName="", Platform="android",
                                     Status=pb().PairStatus.SUCCESS))
        self.deliver(pb().Connected(status=True))

    def lose_connection(self, reconnect: bool = True) -> None:
        self.socket = False
        self.deliver(pb().Disconnected(status=True))
        if reconnect:  # whatsmeow reconnects by itself after a loss
            self.reconnect()

    def reconnect(self) -> None:
        self.socket = True
        self.deliver(pb().Connected(status=True))

    def unlink_from_phone(self) -> None:
        """The phone removed this device: stream error 401 device_removed; whatsmeow deletes the store."""
        self.socket = False
        self.device = None
        self.deliver(pb().LoggedOut(OnConnect=False, Reason=pb().LOGGED_OUT))

    def replace_stream(self) -> None:
        self.socket = False
        self.deliver(pb().StreamReplaced())

    def ban(self, reason: str, expire_seconds: int) -> None:
        self.socket = False
        self.deliver(pb().TemporaryBan(Code=pb().TemporaryBan.TempBanReason.Value(reason), Expire=expire_seconds))

    def receipt(self, kind: str, ids: list[str], chat: str, from_me: bool = False) -> None:
        own = self.device or ""
        source = message_source(chat, own if from_me else chat, from_me)
        self.deliver(pb().Receipt(MessageSource=source, MessageIDs=list(ids), Timestamp=int(time.time()),
                                  Type=pb().Receipt.ReceiptType.Value(kind)))

    def received_documents(self) -> list[dict]:
        """What each recipient's phone gets from the document messages sent (received_media's documents)."""
        return [m for m in self.received_media() if m["kind"] == "document"]

    def received_media(self) -> list[dict]:
        """What each recipient's phone gets from the document and image messages sent: it downloads the file
        the message points to and decrypts it with the message's key (derived for the message's own media
        type, as WhatsApp does: an upload of another type does not decrypt)."""
        received = []
        for to, message in self.sent:
            kind = next((k for k in ("document", "image") if message.HasField(f"{k}Message")), None)
            if kind is None:
                continue
            media = getattr(message, f"{kind}Message")
            media_type, _, blob = self.uploads[media.directPath]
            assert hashlib.sha256(blob).digest() == media.fileEncSHA256
            data = decrypt_media(blob, media.mediaKey, MEDIA_TYPE_OF_MESSAGE[kind])
            assert hashlib.sha256(data).digest() == media.fileSHA256 and len(data) == media.fileLength
            context = media.contextInfo
            received.append({"to": to.User, "kind": kind, "media_type": media_type, "data": data,
                             "file_name": media.fileName if kind == "document" else "",
                             "caption": media.caption, "mimetype": media.mimetype,
                             "mentions": list(context.mentionedJID) + [g.groupJID for g in context.groupMentions]})
        return received

    def close(self) -> None:
        """Whatever a test left running ends: connect() must not outlive it."""
        self._stopped.set()

    def _device(self):
        device = pb().Device(LID=jid(""), Platform="android", BussinessName="", PushName="", Initialized=True)
        if self.device:  # whatsmeow's store has no ID before a link or after a logout
            device.JID.CopyFrom(jid(self.device, device=12))
        return device

    def _device_event(self) -> None:
        self.deliver(self._device(), code=0)
