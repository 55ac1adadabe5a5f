#!/usr/bin/env python3
"""Writes the seed corpus of each fuzz target into tests/fuzz/corpus/<target>/ (the committed
seeds; rerun after changing an input layout). Each seed is a small, meaningful input in the
layout its target's header comment describes: the choice bytes first, then the payload."""
import os
import struct

HERE = os.path.dirname(os.path.abspath(__file__))


def crc32c(data, crc=0):
    c = ~crc & 0xFFFFFFFF
    for b in data:
        c ^= b
        for _ in range(8):
            c = (c >> 1) ^ (0x82F63B78 if c & 1 else 0)
    return ~c & 0xFFFFFFFF


def write(target, name, data):
    d = os.path.join(HERE, "corpus", target)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, name), "wb") as f:
        f.write(data)


def u16(v):
    return struct.pack("<H", v)


# --- fuzz_csv and fuzz_jsonl: [config][u16 stream split][u16 chunk stop][text] -------------------

def csv_seed(config, split, stop, text):
    return bytes([config]) + u16(split) + u16(stop) + text


HEADER = b"id,qty,price,name,ts\n"
csv_seeds = {
    "good": csv_seed(0, 30, 40, HEADER + b"1,2,3.50,apple,1700000000000\n2,1,12,pear,1700000000500\n"
                     b"3,-4,-0.05,fig,0\n"),
    "quoted_crlf_bom": csv_seed(0, 41, 25, b"\xef\xbb\xbf" + HEADER.replace(b"\n", b"\r\n") +
                                b"1,2,7,\"toys, games \"\"kids\"\"\",1\r\n"
                                b"\"2\",3,4.1,\"two\nlines\",2\r\n4,5,6,\"\",3\r\n7,8,9,last,4"),
    "malformed": csv_seed(0, 50, 60, HEADER + b"1,2,3\n\n1,x,3,a,4\n1,2,3.456,a,4\n1,2,3,\"ab\"c,4\n"
                          b"9,9,9,ok,9\r\n\r\n1,2,3,\"never closed,4\n5,5,5,e,5\n"),
    "no_header_semicolon": csv_seed(1 | 4, 9, 3, b"1;2;3.5;a;10\n4;5;6;\"b;c\";20\n7;8\n"),
    "small_max_record": csv_seed(4 << 3, 40, 50, HEADER + b"1,2,3,short,4\n1,2,3," + b"y" * 60 +
                                 b",4\n1,2,3,\"q\nq" + b"z" * 40 + b"\",4\n5,6,7,after,8\n"),
    "header_order_and_extra": csv_seed(0, 20, 10, b"ts,extra,name,price,qty,id\n5,x,n,1.00,2,3\n"
                                       b"6,y,m,2,3,4,5\n"),
    "text_bytes": csv_seed(0, 25, 28, HEADER + b"1,2,3,caf\xc3\xa9,4\n1,2,3,bad\xff\xfe,4\n1,2,3,nul\x00x,4\n"),
    "missing_column": csv_seed(0, 5, 5, b"id,qty,price,name\n1,2,3,a\n"),
}
for name, data in csv_seeds.items():
    write("fuzz_csv", name, data)

jsonl_seeds = {
    "good": csv_seed(0, 60, 80,
                     b'{"id":1,"qty":2,"price":3.50,"name":"apple","ts":1700000000000}\n'
                     b'{"ts":5,"name":"pear","price":12,"qty":-1,"id":2,"note":"n","flag":true}\n'
                     b'{"id":3,"qty":0,"price":-0.05,"name":"fig","ts":0,"customer_reference":"c-77",'
                     b'"we\\"ird":9,"other":[1,{"a":2}]}\n'),
    "escapes_and_nulls": csv_seed(0, 30, 20,
                                  b'\xef\xbb\xbf{"i\\u0064":1,"qty":2,"price":"3.5","name":"a\\"b\\u00e9\\n",'
                                  b'"ts":1,"note":null,"flag":false}\r\n\r\n'
                                  b'  {"id":1,"qty":2,"price":3,"name":"x","ts":2,"id":4}  \n'),
    "bad_lines": csv_seed(0, 40, 45,
                          b'[1,2]\n{"id":1}\n{"id":1,"qty":2,"price":3,"name":"a","ts":1} x\n'
                          b'{"id":{"a":1},"qty":2,"price":3,"name":"a","ts":1}\n'
                          b'{"id":1.0,"qty":2,"price":1e2,"name":"a","ts":1}\n{"id":01,"qty":\n'
                          b'{"id":1,"qty":2,"price":3,"name":"\xff","ts":1}\n'
                          b'{"id":1,"qty":2,"price":3,"name":"ok","ts":1}'),
    "small_max_record": csv_seed(5, 70, 70,
                                 b'{"id":1,"qty":2,"price":3,"name":"short","ts":1}\n'
                                 b'{"id":1,"qty":2,"price":3,"name":"' + b"l" * 80 + b'","ts":1}\n'
                                 b'{"id":7,"qty":2,"price":3,"name":"after","ts":1}\n'),
}
for name, data in jsonl_seeds.items():
    write("fuzz_jsonl", name, data)


# --- fuzz_stream_format: [config][piece count][u16 sizes...][bytes] -----------------------------

def stream_seed(config, pieces, data):
    return bytes([config, len(pieces)]) + b"".join(u16(p) for p in pieces) + data


frames = b""
for payload in [b"first", b"", b"!rejected", b"x" * 40, b"last"]:
    frames += struct.pack("<I", len(payload)) + payload
stream_seeds = {
    "csv_pieces": stream_seed(0, [5, 17, 1, 30], HEADER + b"1,2,3.50,apple,1\n2,1,12,\"pe\nar\",2\r\n3,x,1,a,3\n"),
    "csv_quoted_small_max": stream_seed(5 << 1, [3, 3, 40], HEADER + b"1,2,3,\"a,b\",4\n\n1,2,3,\"" + b"q" * 50 +
                                        b"\",4\n1,2\n1,2,3,\"ab\"c,4\n5,6,7,ok,8\n"),
    "csv_socket_no_final_newline": stream_seed(16, [10], HEADER + b"1,2,3,a,4\n5,6,7,b,8"),
    "csv_file_no_final_newline": stream_seed(0, [30, 1], b"\xef\xbb\xbf" + HEADER + b"1,2,3,a,4\n5,6,7,\"b\"\r"),
    "frames": stream_seed(1 | (5 << 1), [2, 7, 1], frames),
    "frames_torn": stream_seed(1, [3], frames + struct.pack("<I", 9) + b"cut"),
}
for name, data in stream_seeds.items():
    write("fuzz_stream_format", name, data)


# --- fuzz_event_log: [flags][u16 from][u16 span][u64 time][u16 size per segment but the last][segments]

def segment_header(version, base, max_record):
    h = b"SLUICELOG" + bytes([version]) + b"\x00\x00" + struct.pack("<IQ", max_record, base)
    return h + struct.pack("<I", crc32c(h)) + b"\x00" * 4


def segment(base, records, seal=False, max_record=1 << 20):
    """Version 1: a record at a time."""
    out = segment_header(1, base, max_record)
    offset = base
    for t, payload in records:
        lb = struct.pack("<I", len(payload))
        body = struct.pack("<q", t) + payload
        out += lb + struct.pack("<I", crc32c(body, crc32c(lb))) + body
        offset += 1
    if seal:
        lb = struct.pack("<I", 0xFFFFFFFF)
        body = struct.pack("<Q", offset)
        out += lb + struct.pack("<I", crc32c(body, crc32c(lb))) + body
    return out


def varint(v):
    out = b""
    while v >= 0x80:
        out += bytes([(v & 0x7F) | 0x80])
        v >>= 7
    return out + bytes([v])


def zigzag(delta):
    delta &= (1 << 64) - 1
    return ((delta << 1) ^ (((1 << 64) - 1) if delta >> 63 else 0)) & ((1 << 64) - 1)


def batch(records):
    first = records[0][0]
    body = b"".join(varint(len(p)) + varint(zigzag(t - first)) + p for t, p in records)
    tail = struct.pack("<q", first) + body
    return struct.pack("<III", len(body), len(records), crc32c(tail)) + tail


def segment_v2(base, batches, seal=False, max_record=1 << 20):
    """Version 2: record batches, each a list of (time, payload)."""
    out = segment_header(2, base, max_record)
    offset = base
    for records in batches:
        out += batch(records)
        offset += len(records)
    if seal:
        end = struct.pack("<Q", offset)
        out += struct.pack("<III", 0xFFFFFFFF, 0, crc32c(end)) + end
    return out


def log_seed(flags, segments, rng_from=1, span=2, time=5):
    sizes = b"".join(u16(len(s)) for s in segments[:-1])
    return bytes([flags | (len(segments) - 1)]) + u16(rng_from) + u16(span) + struct.pack("<q", time) + sizes + \
        b"".join(segments)


s0 = segment(0, [(1, b"a"), (5, b"bb"), (3, b"ccc")], seal=True)
s1 = segment(3, [(9, b"dddd"), (2, b"")], seal=True)
s2 = segment(5, [(7, b"eeeee")])
v0 = segment_v2(0, [[(1, b"a"), (5, b"bb")], [(3, b"ccc")]], seal=True)
v1 = segment_v2(3, [[(9, b"dddd"), (-(1 << 63), b""), ((1 << 63) - 1, b"x")]], seal=True)
v2 = segment_v2(6, [[(7, b"eeeee")], [(8, b"f"), (6, b"gg")]])
log_seeds = {
    # Version 1 (a record at a time), as logs written before record batches hold them.
    "three_segments": log_seed(0, [s0, s1, s2]),
    "torn_tail": log_seed(0, [s0, s1, s2 + b"\x05\x00\x00\x00\x01\x02"]),
    "corrupt_crc_last": log_seed(0, [s0, s1, s2[:-2] + b"XX"]),
    "sealed_last": log_seed(0, [s0, s1]),
    "torn_header": log_seed(0, [s0, s1, s2[:20]]),
    # Payload bytes changed, a wrong base and seal offset, a torn end: the harness repairs all but the last.
    "fixed_crcs_consecutive": log_seed(4 | 8, [s0[:-20] + b"Z" + s0[-19:], segment(99, [(4, b"ff")], seal=True),
                                              s2[:-3]], time=-1),
    "hole": log_seed(0, [s0, segment(7, [(1, b"x")])]),
    "small_writer_max": log_seed(16, [segment(0, [(1, b"y" * 100)], max_record=128)]),
    # Version 2 (record batches).
    "v2_three_segments": log_seed(0, [v0, v1, v2], rng_from=2, span=5),
    "v2_torn_batch": log_seed(0, [v0, v1, v2[:-3]]),
    "v2_corrupt_crc_last": log_seed(0, [v0, v1, v2[:-2] + b"XX"]),
    "v2_sealed_last": log_seed(0, [v0, v1]),
    "v2_forged_count": log_seed(4 | 8, [v0, v2[:32 + 4] + b"\x7f" + v2[37:]]),
    "v2_fixed_crcs_consecutive": log_seed(4 | 8, [v0[:-30] + b"Z" + v0[-29:], segment_v2(99, [[(4, b"ff")]], seal=True),
                                                 v2[:-1]], time=-1),
    "v2_small_writer_max": log_seed(16, [segment_v2(0, [[(1, b"y" * 100), (2, b"z")]], max_record=128)]),
    "mixed_v1_then_v2": log_seed(0, [s0, s1, segment_v2(5, [[(7, b"eeeee"), (1, b"")]])], rng_from=4, span=3),
    "mixed_v1_active": log_seed(0, [s0, segment(3, [(9, b"dddd")])]),
    # Flags 0xFF: records for log_batch ([u64 time][u8 + u8 size][payload]...).
    "log_batch_records": b"\xff" + struct.pack("<q", 5) + b"\x02\x01abc" + struct.pack("<q", -(1 << 63)) +
                         b"\x00\x00" + struct.pack("<q", (1 << 63) - 1) + b"\xff\x2d" + b"p" * 300,
}
for name, data in log_seeds.items():
    write("fuzz_event_log", name, data)


# --- fuzz_iso8601: the text -----------------------------------------------------------------------

for name, text in {
    "plain": b"2024-03-01T12:34:56Z",
    "millis": b"2024-02-29T23:59:59.999Z",
    "space_one_digit": b"1970-01-01 00:00:00.5Z",
    "not_leap": b"2100-02-29T00:00:00Z",
    "year_zero": b"0000-01-01T00:00:00.01Z",
    "bad_month": b"2024-13-01T00:00:00Z",
    "four_digits_fraction": b"2024-03-01T12:34:56.1234Z",
}.items():
    write("fuzz_iso8601", name, text)


# --- fuzz_http: the bytes a client sends ----------------------------------------------------------

for name, req in {
    "get_echo": b"GET /echo?a=1&b=two+words&c=%41%42&&d HTTP/1.1\r\nHost: x\r\n\r\n",
    "head_close": b"HEAD /health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
    "pipelined": b"GET /health HTTP/1.1\r\n\r\nGET /status?code=204&type=text%2Fplain HTTP/1.1\r\n\r\n"
                 b"GET /nope HTTP/1.0\r\n\r\n",
    "post_body": b"POST /echo HTTP/1.1\r\nContent-Length: 5\r\n\r\nhello",
    "chunked": b"GET /echo HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n",
    "absolute_form": b"GET http://host:1/echo?x=%zz HTTP/1.1\r\n\r\n",
    "handler_errors": b"GET /fail?code=418&why=teapot HTTP/1.1\r\n\r\nGET /boom HTTP/1.1\r\n\r\n"
                      b"GET /status?code=99 HTTP/1.1\r\n\r\nGET /status?type=a%0Db HTTP/1.1\r\n\r\n",
    "bad_version": b"GET / HTTP/2.0\r\n\r\n",
    "huge_header": b"GET /health HTTP/1.1\r\nX: " + b"a" * 1100 + b"\r\n\r\n",
    "keep_alive_10": b"GET /echo?k HTTP/1.0\r\nConnection: keep-alive\r\n\r\nGET /health HTTP/1.0\r\n\r\n",
}.items():
    write("fuzz_http", name, req)
