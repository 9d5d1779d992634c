"""streamrec: the migration stream's record framing in Python, for the tests
and tools that write or patch streams by hand (docs/stream-format.md
sections 3-4): record types, CRC32C, the stream header and one record."""
import struct

VERSION = 2
MAGIC = 0x47494D5952524546
HDR_F_SAVED = 1

# enum stream_type (include/stream_format.h)
TYPES = {"HELLO": 0x01, "HELLO_ACK": 0x02, "GUEST_INFO": 0x03, "PAGE_DATA": 0x04, "ZERO_PAGES": 0x05,
         "XBZRLE_PAGES": 0x06, "CPU_STATE": 0x07, "DIGEST": 0x08, "END": 0x09, "COMMIT": 0x0A, "NACK": 0x0B,
         "ERROR": 0x0C, "CANCEL": 0x0D, "DEVICE_STATE": 0x0E, "READY": 0x0F, "GO": 0x10, "VERIFIED": 0x11,
         "REGION_DIGEST": 0x12, "ITER_END": 0x80000001}
HELLO, HELLO_ACK = TYPES["HELLO"], TYPES["HELLO_ACK"]

_TABLE = []
for _i in range(256):
    _c = _i
    for _ in range(8):
        _c = (_c >> 1) ^ 0x82F63B78 if _c & 1 else _c >> 1
    _TABLE.append(_c)


def crc32c(data):
    """CRC32C (Castagnoli, reflected, init and final xor 0xffffffff)."""
    c = 0xFFFFFFFF
    for b in data:
        c = _TABLE[(c ^ b) & 0xFF] ^ (c >> 8)
    return c ^ 0xFFFFFFFF


def header(flags=0, version=VERSION):
    """The 32-byte stream header."""
    return struct.pack("<QIIIIII", MAGIC, version, 32, 0x01020304, 12, flags, 0)


def record(rtype, body, crc=False):
    """One record: header, body, zero padding to 8, and the CRC trailer when
    crc (HELLO and HELLO_ACK always carry one)."""
    rec = struct.pack("<II", rtype, len(body)) + body + b"\0" * (-len(body) % 8)
    if crc or rtype in (HELLO, HELLO_ACK):
        rec += struct.pack("<II", crc32c(rec), 0)
    return rec
