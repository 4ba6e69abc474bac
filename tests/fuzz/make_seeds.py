#!/usr/bin/env python3
"""Writes the hand-made seed corpus of the fuzz targets: python3 tests/fuzz/make_seeds.py
tests/fuzz/corpus. Realistic inputs of each parser (valid messages, cut UTF-8, big numbers,
nested JSON, Docker log frames, events and pull streams...) and the neighbours of each limit.
Inputs the fuzzers found (regress-*: each a fixed bug) are not written here but kept by hand."""
import json, os, struct, sys
root = sys.argv[1]
def put(target, name, data):
    d = os.path.join(root, target)
    os.makedirs(d, exist_ok=True)
    if isinstance(data, str):
        data = data.encode('utf-8', 'surrogateescape')
    with open(os.path.join(d, name), 'wb') as f:
        f.write(data)
def js(o):
    return json.dumps(o, separators=(',', ':'), ensure_ascii=False)

CB = "http://receiver.example/grade"
CID = "0123456789abcdef" * 4
JOB = "123e4567-e89b-42d3-a456-426614174000"

# ---------------------------------------------------------------- msg_pending
P = "msg_pending"
base = {"work_id": "abc123", "image": "correction-test-1:latest",
        "file": "/srv/uploads/1716200000000-exercise.txt", "callback": CB,
        "params": ["EXERCISE=6", "LANGUAGE=js"]}
put(P, "valid", js(base))
put(P, "valid-pretty", json.dumps(base, indent=2))
put(P, "valid-no-params", js({k: v for k, v in base.items() if k != "params"}))
put(P, "work-id-number", js(dict(base, work_id=42)))
put(P, "work-id-real", '{"work_id":1e300,"image":"i","file":"/f","callback":"https://r.example/"}')
put(P, "work-id-null", js(dict(base, work_id=None)))
put(P, "work-id-object", js(dict(base, work_id={"a": 1})))
put(P, "work-id-long", js(dict(base, work_id="w" * 3000)))
put(P, "work-id-escapes", js(dict(base, work_id="caf\u00e9 \u2028 \U0001f600 \" \\ \t")))
put(P, "param-accents", js(dict(base, params=["a" + "\u00e9" * 60 + "=1"])))
put(P, "param-accents-value", js(dict(base, params=["NAME=" + "\u00e9" * 200])))
put(P, "param-bad-name", js(dict(base, params=["1ABC=x", "A B=c"])))
put(P, "param-no-eq", js(dict(base, params=["JUSTNAME"])))
put(P, "param-eq-in-value", js(dict(base, params=["A=b=c=d"])))
put(P, "param-nul", '{"image":"i","file":"/f","callback":"http://r/","params":["A=\\u0000b"]}')
put(P, "param-not-string", js(dict(base, params=["A=1", 2, None])))
put(P, "params-many", js(dict(base, params=["P%d=%d" % (i, i) for i in range(257)])))
put(P, "params-not-array", js(dict(base, params="A=1")))
put(P, "callback-bad-scheme", js(dict(base, callback="ftp://receiver.example/")))
put(P, "callback-no-host", js(dict(base, callback="http:///path")))
put(P, "callback-space", js(dict(base, callback="http://a b/")))
put(P, "callback-accents", js(dict(base, callback="http://r\u00e9cepteur.example/" + "\u00e9" * 120)))
put(P, "callback-ipv6", js(dict(base, callback="http://[::1]:8080/x?y=z#f")))
put(P, "callback-missing-image-bad", js({"work_id": "x", "callback": CB, "image": "a b", "file": "/f"}))
put(P, "image-accents", js(dict(base, image="correcci\u00f3n-" + "\u00e9" * 80 + ":1")))
put(P, "image-control", js(dict(base, image="img\u0001")))
put(P, "file-missing", js({k: v for k, v in base.items() if k != "file"}))
put(P, "file-empty", js(dict(base, file="")))
put(P, "missing-all", "{}")
put(P, "not-object", '["work_id"]')
put(P, "not-json", 'work_id=abc')
put(P, "truncated", js(base)[:60])
put(P, "duplicate-keys", '{"image":"a","image":"b","file":"/f","callback":"http://r/"}')
put(P, "invalid-utf8", b'{"work_id":"\xc3","image":"i","file":"/f","callback":"http://r/"}')
put(P, "invalid-utf8-cut", b'{"image":"caf\xc3\xa9\xe2\x82","file":"/f","callback":"http://r/"}')
put(P, "nested-deep", '{"work_id":"x","image":"i","file":"/f","callback":"http://r/","extra":' + "[" * 500 + "]" * 500 + "}")
put(P, "big-numbers", '{"work_id":123456789012345678901234567890,"image":"i","file":"/f","callback":"http://r/"}')
put(P, "extra-fields", js(dict(base, priority=5, meta={"a": [1, 2.5, True, None]})))

# ---------------------------------------------------------------- msg_running
R = "msg_running"
rb = {"work_id": "abc123", "container_id": CID, "callback": CB, "job_id": JOB}
put(R, "valid", js(rb))
put(R, "legacy-id", js({"work_id": 7, "id": CID, "callback": CB}))
put(R, "no-job-id", js({"work_id": "w", "container_id": CID, "callback": CB}))
put(R, "no-work-id", js({"container_id": CID, "callback": CB}))
put(R, "id-upper", js(dict(rb, container_id=CID.upper())))
put(R, "id-short", js(dict(rb, container_id=CID[:12])))
put(R, "id-both", js(dict(rb, id="x")))
put(R, "job-id-long", js(dict(rb, job_id="j" * 200)))
put(R, "job-id-accents", js(dict(rb, job_id="\u00e9" * 64)))
put(R, "work-id-real", js(dict(rb, work_id=0.1)))
put(R, "work-id-big", '{"work_id":1.7976931348623157e308,"container_id":"%s","callback":"http://r/"}' % CID)
put(R, "callback-not-string", js(dict(rb, callback=5)))
put(R, "not-object", '"x"')
put(R, "truncated", js(rb)[:40])
put(R, "invalid-utf8", b'{"container_id":"' + CID.encode() + b'","callback":"http://r/\xff"}')

# ---------------------------------------------------------------- msg_finished
F = "msg_finished"
fb = {"work_id": "abc123", "error": False,
      "correction_data": {"success": True, "grade": 7.5, "comments": ["ok", "caf\u00e9"]},
      "callback": CB, "job_id": JOB}
put(F, "success", js(fb))
put(F, "error", js({"work_id": "abc123", "error": True,
                    "correction_data": "invalid message - field 'image' is empty", "callback": CB}))
put(F, "error-accents", js({"work_id": 1, "error": True,
                           "correction_data": "invalid param - 'a" + "\u00e9" * 60 + "...", "callback": CB}))
put(F, "success-work-id-override", js(dict(fb, correction_data={"success": True, "grade": 1, "work_id": "evil"})))
put(F, "success-failed", js(dict(fb, correction_data={"success": False, "error": "compilation failed"})))
put(F, "big-numbers", '{"work_id":"w","error":false,"correction_data":{"success":true,"grade":1,"x":[1e300,1e300,-1e-300,5e-324,1.7976931348623157e308,9007199254740993,-0.0,1E21]},"callback":"http://r/"}')
put(F, "nested", js(dict(fb, correction_data={"success": True, "grade": 1, "n": [[[[{"a": {"b": [1]}}]]]]})))
put(F, "unicode-keys", js(dict(fb, correction_data={"success": True, "grade": 1, "\u20ac": 1, "\r": 2, "\U0001f600": 3, "\ufb33": 4})))
put(F, "error-not-bool", js(dict(fb, error="false")))
put(F, "error-data-object", js(dict(fb, error=True)))
put(F, "success-data-string", js(dict(fb, correction_data="x")))
put(F, "no-callback", js({k: v for k, v in fb.items() if k != "callback"}))
put(F, "not-json", "\x00\x01\x02")
put(F, "deep", '{"error":false,"callback":"http://r/","correction_data":{"a":' + "[" * 2100 + "]" * 2100 + "}}")
put(F, "escapes", '{"error":true,"callback":"http://r/","correction_data":"\\u0001\\u001f\\"\\\\\\/\\b\\f\\n\\r\\t\\u2028\\ud83d\\ude00"}')
put(F, "lone-surrogate", '{"error":true,"callback":"http://r/","correction_data":"\\ud83d"}')

# ---------------------------------------------------------------- output_parse
O = "output_parse"
put(O, "whole-json", '{"success":true,"grade":10,"comments":["well done"]}\n')
put(O, "block", "compiling...\nrunning tests\n-----BEGIN CORRECTOMATIC RESPONSE-----\n" + js({"success": True, "grade": 5, "comments": ["a", "b"]}) + "\n-----END CORRECTOMATIC RESPONSE-----\nbye\n")
put(O, "block-crlf", "x\r\n-BEGIN CORRECTOMATIC RESPONSE-\r\n{\"success\":false,\"error\":\"no\"}\r\n-END CORRECTOMATIC RESPONSE-\r\n")
put(O, "two-blocks", "-BEGIN CORRECTOMATIC RESPONSE-\n{}\n-END CORRECTOMATIC RESPONSE-\n-BEGIN CORRECTOMATIC RESPONSE-\n{}\n-END CORRECTOMATIC RESPONSE-\n")
put(O, "end-before-begin", "-END CORRECTOMATIC RESPONSE-\n{}\n-BEGIN CORRECTOMATIC RESPONSE-\n")
put(O, "begin-only", "---BEGIN CORRECTOMATIC RESPONSE---\n{\"success\":true,\"grade\":1}\n")
put(O, "empty-block", "-BEGIN CORRECTOMATIC RESPONSE-\n \n-END CORRECTOMATIC RESPONSE-\n")
put(O, "no-dashes", "BEGIN CORRECTOMATIC RESPONSE\n{}\nEND CORRECTOMATIC RESPONSE\n")
put(O, "invalid-json", '{"success":true,"grade":}')
put(O, "invalid-json-accents", '{"success":true,"comments":["caf\u00e9", \u00e9\u00e9\u00e9\u00e9]}')
put(O, "invalid-utf8-in-json", b'{"success":true,"comments":["caf\xc3"]}')
put(O, "cut-utf8-near-error", b'{"success":true,"grade":1,"x":\xe2\x82\xac\xe2\x82}')
put(O, "success-no-grade", '{"success":true}')
put(O, "grade-string", '{"success":true,"grade":"10"}')
put(O, "comments-not-strings", '{"success":true,"comments":["a",1]}')
put(O, "success-false-no-error", '{"success":false}')
put(O, "success-not-bool", '{"success":"yes","grade":1}')
put(O, "array", '[{"success":true,"grade":1}]')
put(O, "big-numbers", '{"success":true,"grade":1,"x":[' + ",".join(["1e300"] * 50) + "]}")
put(O, "deep-nesting", '{"success":true,"grade":1,"x":' + "[" * 3000 + "]" * 3000 + "}")
put(O, "stdout-text", "Hello, world\nno response here\n")
put(O, "binary", bytes(range(256)))
put(O, "blank", " \n\t\r\n")
put(O, "empty", "")
put(O, "duplicate-keys", '{"success":true,"grade":1,"grade":2}')
put(O, "many-begins", "-BEGIN CORRECTOMATIC RESPONSE-\n" * 200)
put(O, "stderr-like", "Traceback (most recent call last):\n  File \"x.py\", line 1\n" + "\u00e9" * 300 + "\nError: caf\u00e9\n\n")
put(O, "nul-in-json", '{"success":true,"grade":1,"c":"a\\u0000b"}')

# ---------------------------------------------------------------- output_demux
D = "output_demux"
def frame(t, b):
    if isinstance(b, str): b = b.encode()
    return bytes([t, 0, 0, 0]) + struct.pack(">I", len(b)) + b
resp = '{"success":true,"grade":9}\n'
put(D, "stdout-only", b"\x1c" + frame(1, resp))
put(D, "stdout-stderr", b"\x24" + frame(1, "line 1\n") + frame(2, "warning: x\n") + frame(1, resp) + frame(2, "caf\u00e9\n"))
put(D, "cut-frame", b"\x3f" + frame(1, "0123456789" * 10)[:50])
put(D, "cut-header", b"\x1c" + frame(1, "abc") + b"\x01\x00\x00")
put(D, "header-only-cut", b"\x00\x01\x00\x00")
put(D, "bad-type", b"\x1c" + frame(3, "x"))
put(D, "bad-padding", b"\x1c" + b"\x01\x00\x01\x00\x00\x00\x00\x01x")
put(D, "raw-tty", b"\x1c" + b"plain text output, no frames\n")
put(D, "empty-frames", b"\x09" + frame(1, "") + frame(2, "") + frame(0, ""))
put(D, "overflow-small", b"\x09" + frame(1, "x" * 100) + frame(2, "y" * 100) + frame(1, "z" * 5))
put(D, "stderr-tail", b"\x08" + b"".join(frame(2, "err %d\n" % i) for i in range(50)))
put(D, "stdin-frame", b"\x1c" + frame(0, "stdin?"))
put(D, "huge-size", b"\x3f" + b"\x01\x00\x00\x00\xff\xff\xff\xff" + b"a" * 30)
put(D, "cut-utf8", b"\x0a" + frame(1, "\u00e9" * 10) + frame(2, "\u20ac" * 10))
put(D, "empty", b"\x00")

# ---------------------------------------------------------------- canon
C = "canon"
put(C, "rfc8785-keys", '{"\\u20ac":"Euro Sign","\\r":"Carriage Return","\\ufb33":"Hebrew","1":"One","\\ud83d\\ude00":"Emoji","\\u0080":"Control","\\u00f6":"Latin"}')
put(C, "rfc8785-numbers", '[0,-0,1,-1,0.1,1e21,1e-7,333333333.3333333,1.7976931348623157e308,5e-324,9007199254740992,9007199254740993,295147905179352830000,4.50,2e-3,0.000001,1e20]')
put(C, "rfc8785-example", '{"numbers":[333333333.33333329,1E30,4.50,2e-3,0.000000000000000000000000001],"string":"\\u20ac$\\u000F\\u000aA\'\\u0042\\u0022\\u005c\\\\\\"\\/","literals":[null,true,false]}')
put(C, "escapes", '"\\u0001\\u001f\\b\\f\\n\\r\\t\\"\\\\/\\u2028\\u2029\\u007f"')
put(C, "nested", '{"b":[1,{"z":1,"a":[[],{}]}],"a":{"y":null,"x":"x"}}')
put(C, "deep", "[" * 1000 + "]" * 1000)
put(C, "response", '{"success":true,"grade":7.25,"comments":["caf\u00e9","\U0001f600"],"work_id":"w"}')
put(C, "double-bits", struct.pack("<d", 0.1) + b"0.1")
put(C, "double-bits-max", struct.pack("<d", 1.7976931348623157e308))
put(C, "double-bits-min", struct.pack("<d", 5e-324))
put(C, "double-bits-nan", struct.pack("<d", float("nan")))
put(C, "double-bits-int", struct.pack("<q", 9007199254740993))
put(C, "double-bits-intmin", struct.pack("<q", -2**63))
put(C, "big-int", '[9223372036854775807,-9223372036854775808,123456789012345678]')
put(C, "too-big-int", '[92233720368547758070]')
put(C, "reals", '[1.5e300,1e-320,0.30000000000000004,100,1e2,1E+2,-1.0e-0]')
put(C, "keys-prefix", '{"ab":1,"a":2,"":3,"abc":4,"\\u00e9":5,"e\\u0301":6}')
put(C, "string", '"plain"')
put(C, "invalid-utf8", b'"\xc3\x28"')

# ---------------------------------------------------------------- docker_list
L = "docker_list"
ps = [{"Id": CID, "Names": ["/correction-" + JOB], "Image": "correction-test-1:latest",
       "ImageID": "sha256:" + "ab" * 32, "Command": "/bin/sh -c 'echo \"hi\"'", "Created": 1716200000,
       "Ports": [], "Labels": {"correctomatic.job_id": JOB, "correctomatic.callback": CB,
                               "correctomatic.work_id": "\u00e9\u00e9", "correctomatic.deadline": "1716200180"},
       "State": "running", "Status": "Up 3 seconds", "HostConfig": {"NetworkMode": "none"},
       "NetworkSettings": {"Networks": {}}, "Mounts": [{"Type": "volume", "Name": "v", "RW": True}]},
      {"Id": "fedcba9876543210" * 4, "Names": ["/correction-x"], "State": "exited", "Labels": {}}]
put(L, "two-containers", json.dumps(ps))
put(L, "compact", js(ps))
put(L, "empty", "[]")
put(L, "empty-ws", " [ \n ] ")
put(L, "escaped-id", '[{"Id":"\\u0030123","State":"run\\"ning"}]')
put(L, "state-not-string", '[{"Id":"' + CID + '","State":{"x":1}}]')
put(L, "no-id", '[{"State":"dead"},{}]')
put(L, "duplicate-id", '[{"Id":"a","Id":"' + CID + '"}]')
put(L, "deep", '[{"Labels":' + "[" * 70 + "]" * 70 + ',"Id":"x"}]')
put(L, "deep-ok", '[{"Labels":' + "[" * 60 + "]" * 60 + ',"Id":"x"}]')
put(L, "not-array", '{"Id":"x"}')
put(L, "truncated", json.dumps(ps)[:300])
put(L, "numbers", '[{"Created":-1.5e+300,"Id":"x","Size":0,"Flag":true,"N":null}]')
put(L, "array-of-arrays", '[[1],[2]]')
put(L, "engine-error", '{"message":"page not found"}')

# ---------------------------------------------------------------- docker_stream
S = "docker_stream"
ev = {"status": "die", "id": CID, "from": "correction-test-1:latest", "Type": "container",
      "Action": "die", "Actor": {"ID": CID, "Attributes": {"exitCode": "0", "correctomatic.job_id": JOB,
                                                           "name": "correction-x"}},
      "scope": "local", "time": 1716200000, "timeNano": 1716200000000000000}
events = "".join(js(dict(ev, Action=a, status=a)) + "\n" for a in ["create", "start", "die", "destroy"])
put(S, "events-one-chunk", b"\x00\x00" + events.encode())
put(S, "events-chunked", b"\x00\x07" + events.encode())
put(S, "events-partial-last", b"\x00\x33" + (events + '{"Type":"container","Act').encode())
put(S, "events-blank-lines", b"\x00\x05" + b"\n \n\r\n" + events.encode() + b"\n\n")
put(S, "events-invalid", b"\x00\x02" + b'{"Type":"container"}\nnot json\n{"x":1}\n')
put(S, "events-long-line", b"\x00\x11" + b'{"x":"' + b"a" * 400 + b'"}\n')
put(S, "events-stop-2", b"\x20\x09" + events.encode())
put(S, "events-error-500", b"\x08\x00" + b'{"message":"Error response from daemon: caf\xc3\xa9 \xe2\x82"}')
put(S, "events-error-404-text", b"\x04\x03" + b"404 page not found\n")
put(S, "events-scalar-line", b"\x00\x00" + b"123\n\"s\"\n[1]\n")
pull = ['{"status":"Pulling from library/busybox","id":"latest"}',
        '{"status":"Downloading","progressDetail":{"current":1024,"total":2048},"progress":"[=>  ]","id":"abc"}',
        '{"status":"Digest: sha256:' + "ab" * 32 + '"}',
        '{"status":"Status: Downloaded newer image for busybox:latest"}']
put(S, "pull-ok", b"\x01\x0b" + ("\r\n".join(pull) + "\r\n").encode())
put(S, "pull-error", b"\x01\x00" + ("\n".join(pull[:2] + ['{"errorDetail":{"message":"manifest unknown"},"error":"manifest unknown"}', pull[3]]) + "\n").encode())
put(S, "pull-error-detail-only", b"\x01\x04" + b'{"error":"","errorDetail":{"message":"toomanyrequests: caf\xc3\xa9"}}\n')
put(S, "pull-error-long", b"\x01\x00" + ('{"error":"' + "\u00e9" * 140 + '"}\n').encode())
put(S, "pull-no-newline", b"\x01\x00" + pull[0].encode())
put(S, "pull-too-long", b"\x01\x3d" + b'{"status":"' + b"x" * 500 + b'"}\n')
put(S, "pull-404", b"\x05\x00" + b'{"message":"pull access denied for x, repository does not exist or may require \'docker login\'"}\n')
put(S, "plain-500-json", b"\x0a\x00" + b'{"message":"failed to update store for object type *libnetwork.endpoint: open : no such file or directory"}')
put(S, "plain-500-text", b"\x0a\x00" + ("Internal Server Error: " + "\u00e9" * 400).encode())
put(S, "plain-404-cut-utf8", b"\x06\x00" + b"x" * 511 + "\u00e9".encode())
put(S, "plain-200", b"\x02\x00" + js({"Id": CID, "State": {"Status": "exited", "ExitCode": 0}}).encode())
put(S, "plain-message-not-string", b"\x0a\x00" + b'{"message":5}  \n')

# ---------------------------------------------------------------- config
G = "config"
for i, v in enumerate(["1048576", "512k", "512KiB", "64m", "64MB", "1g", "1G", "0", "18446744073709551615",
                       "18446744073709551616", "17179869184g", "1b", "1kb", "1 k", "-1", "1.5m", "", "k"]):
    put(G, "bytes-%02d" % i, bytes([i % 2 * 1]) + v.encode())
for i, v in enumerate(["180", "500ms", "30s", "2m", "5min", "1h", "1H", "0", "307445734561825861m", "1d", "s"]):
    put(G, "duration-%02d" % i, b"\x00" + v.encode())
for i, v in enumerate(["1", "0.5", "2.25", "0.0000000001", "1.123456789123", "1.", ".5", "1024", "1025", "18446744073.709551615"]):
    put(G, "cpus-%02d" % i, b"\x01" + v.encode())
for i, v in enumerate(["true", "YES", "si", "S", "off", "nope", "on\x00x"]):
    put(G, "bool-%02d" % i, b"\x00" + v.encode())
for i, v in enumerate(["unix:///var/run/docker.sock", "unix://relative", "unix:///" + "a" * 120, "tcp://127.0.0.1:2375",
                       "tcp://docker.example", "tcp://[::1]:2376/", "tcp://[fe80::1%eth0]:1", "tcp://host:0",
                       "tcp://host:65536", "tcp://user@host:1", "tcp://host/path", "http://host", "tcp://:2375", "tcp://host:99999999999999999999"]):
    put(G, "docker-host-%02d" % i, bytes([2 | (i % 2) * 4]) + v.encode())
for i, v in enumerate(["whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", "MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", "whsec_", "whsec_YQ==",
                       "whsec_Y===", "whsec_====", "whsec_not base64!", "A" * 344, "A" * 348]):
    put(G, "secret-%02d" % i, b"\x03" + v.encode())

# ---------------------------------------------------------------- registry
Y = "registry"
for i, v in enumerate(["ubuntu", "ubuntu:22.04", "team/java:3", "registry.example/java", "127.0.0.1:5055/ct/ok:1",
                       "localhost/x:2", "localhost:5000/a/b/c", "reg.example:5000/x", "reg.example/x@sha256:abcd",
                       "reg.example:5000/x:1@sha256:abcd", "x:", "x@", "/x", "x/", "a//b", ":tag", "@sha256:1",
                       "a@b@c", "reg.x/a@s/1", "correcci\u00f3n:1", "a" * 513, "a:b:c", "a/b:c/d"]):
    put(Y, "ref-%02d" % i, b"\x00" + v.encode())
creds = {"registry.example:5000": {"username": "ci", "password": "s3cr#t-pass!"},
         "https://index.docker.io/v1/": {"username": "hub", "password": "p"}}
put(Y, "creds-valid", b"\x01" + js(creds).encode())
put(Y, "creds-hub-alias-twice", b"\x01" + js({"docker.io": {"username": "a", "password": "b"}, "index.docker.io": {"username": "a", "password": "c#x"}}).encode())
put(Y, "creds-unknown-field", b"\x01" + js({"r.example": {"username": "a", "password": "pw#secret!", "email": "x"}}).encode())
put(Y, "creds-no-username", b"\x01" + js({"r.example": {"password": "pw#secret!"}}).encode())
put(Y, "creds-blank-host", b"\x01" + js({"r example": {"username": "a", "password": "pw#secret!"}}).encode())
put(Y, "creds-not-object", b"\x01" + b'["r.example"]')
put(Y, "creds-bad-json", b"\x01" + b'{"r.example": {"username": "a", "password": "pw#sec')
put(Y, "creds-empty", b"\x01{}")
put(Y, "creds-scheme-only", b"\x01" + js({"https://": {"username": "a", "password": "b"}}).encode())
put(Y, "creds-accents", b"\x01" + js({"r\u00e9gistre.example": {"username": "\u00e9", "password": "\u00e9#"}}).encode())
for i, v in enumerate(["registry.example/*,correction-*\n--\nregistry.example/team/java:3",
                       "correction-*\n--\ncorrection-x.evil/y", "ct/java\n--\nct/java:17",
                       " , ,\n--\nx", "a b\n--\nx", "ubuntu:22.04,reg.example:5000/x@sha256:abcd\n--\nubuntu",
                       "[a-z]*/*\n--\nteam/java", "*\n--\n" + "a/" * 200 + "b", "registry.example/\n--\nregistry.example/x"]):
    put(Y, "allow-%02d" % i, b"\x02" + v.encode())
for i, v in enumerate([(0, 404, "manifest unknown"), (0, 500, "Get \"https://r.example/v2/\": dial tcp: lookup r.example: no such host"),
                       (0, 401, "unauthorized: authentication required"), (0, 200, "toomanyrequests: rate limit"),
                       (1, 0, "timeout"), (0, 500, "repository does not exist or may require 'docker login'")]):
    e, st, m = v
    put(Y, "classify-%02d" % i, b"\x03" + bytes([e, st & 0xff, st >> 8]) + m.encode())

# ---------------------------------------------------------------- netpolicy
N = "netpolicy"
import ipaddress
def addr(flags, a):
    ip = ipaddress.ip_address(a)
    b = ip.packed
    return bytes([flags]) + b + b"\x00" * (16 - len(b))
for i, (f, a, rest) in enumerate([(1, "127.0.0.1", ""), (0, "127.0.0.1", ""), (1, "10.1.2.3", "receiver.example\n--\nreceiver.example"),
                                  (1, "172.31.255.255", "*.example.com\n--\nx.example.com"), (1, "172.32.0.1", "*.example.com\n--\nexample.com"),
                                  (0, "169.254.169.254", ""), (0, "224.0.0.1", ""), (0, "255.255.255.255", ""), (0, "0.1.2.3", ""),
                                  (1, "100.64.0.1", "a.example, b.example,,\n--\nB.EXAMPLE"), (1, "100.128.0.1", ", ,\n--\nx"),
                                  (1, "192.168.1.1", ""), (0, "93.184.216.34", "*.\n--\n."),
                                  (3, "::1", ""), (2, "::", ""), (3, "fe80::1", ""), (2, "febf::1", ""), (2, "ff02::1", ""),
                                  (3, "fd00::1", ""), (3, "::ffff:127.0.0.1", ""), (2, "::ffff:169.254.1.1", ""),
                                  (3, "2001:db8::1", "*.example\n--\nA.EXAMPLE")]):
    put(N, "addr-%02d" % i, addr(f, a) + rest.encode())
# the cloud metadata addresses and IPv4 carried in IPv6 (issue 11)
for i, (f, a) in enumerate([(0, "100.100.100.200"), (0, "168.63.129.16"), (0, "192.0.0.192"),
                            (2, "fd00:ec2::254"), (2, "fd20:ce::254"), (2, "64:ff9b::a9fe:a9fe"),
                            (3, "64:ff9b:1::7f00:1"), (2, "2002:a9fe:a9fe::1"), (2, "::a9fe:a9fe"),
                            (3, "::ffff:0:a00:1"), (2, "fd00:ec2::253"), (3, "fec0::1")]):
    put(N, "meta-%02d" % i, addr(f, a))

# ---------------------------------------------------------------- text
T = "text"
samples = {
    "ascii": b"plain ascii text",
    "accents": "caf\u00e9 cr\u00e8me br\u00fbl\u00e9e".encode(),
    "euro-cut": "\u20ac\u20ac".encode()[:5],
    "emoji": "\U0001f600\U0001f680".encode(),
    "emoji-cut": "\U0001f600".encode()[:3],
    "overlong": b"\xc0\xaf\xe0\x80\xaf\xf0\x80\x80\xaf",
    "surrogates": b"\xed\xa0\x80\xed\xbf\xbf",
    "above-max": b"\xf4\x90\x80\x80\xf5\x80\x80\x80",
    "nul": b"a\x00b\x00",
    "continuation": b"\x80\xbf\x80",
    "c1": b"\xc2\x80\xc2\x9f",
    "param-60-e": ("a" + "\u00e9" * 60 + "=1").encode(),
    "stderr-latin1": "Fehler: Datei nicht gefunden \u00e4\u00f6\u00fc".encode("latin-1"),
    "binary": bytes(range(256)),
    "bom": b"\xef\xbb\xbfhello",
    "max-char": b"\xf4\x8f\xbf\xbf",
}
for i, (name, b) in enumerate(samples.items()):
    for dst, mx in [(255, 255), (8, 5), (4, 3), (1, 0), (0, 2)]:
        put(T, "%s-%d-%d" % (name, dst, mx), bytes([dst, mx]) + b)

# ---------------------------------------------------------------- worst cases for the size bounds
wid = "".join(chr(1 + i % 31) for i in range(1024))  # every byte escaped as \u00XX
cbq = "http://r.example/" + '"\\' * ((4096 - 17) // 2)
put(R, "bounds-worst", js({"work_id": wid, "container_id": CID, "callback": cbq, "job_id": '"' * 128}))
put(R, "bounds-work-id-1025", js({"work_id": "w" * 1025, "container_id": CID, "callback": CB}))
put(P, "bounds-worst", js({"work_id": wid, "image": "i", "file": "/f", "callback": cbq, "params": ["A=" + "\u00e9" * 3000]}))
put(P, "bounds-worst-refused", js({"work_id": wid, "image": "i i", "file": "/f", "callback": cbq}))
put(F, "bounds-worst-error", js({"work_id": wid, "error": True, "callback": cbq, "job_id": '"' * 128,
                                 "correction_data": "\u0001" * 9000}))
put(F, "bounds-worst-success", js({"work_id": wid, "error": False, "callback": cbq, "job_id": '"' * 128,
                                   "correction_data": {"success": True, "grade": 1, "x": ["\u0001" * 3000]}}))

# ---------------------------------------------------------------- log
G2 = "log"
put(G2, "plain", b"abc123\n--\ncontainer start failed - endpoint with name correction-x already exists")
put(G2, "escapes", b'caf\xc3\xa9 "quoted" \\back\n--\nline1\nline2\r\n\ttab \x01\x7f')
put(G2, "invalid-utf8", b"\xc3\n--\n\xe2\x82 cut \xff\xfe")
put(G2, "empty", b"\n--\n")
put(G2, "long", b"x" * 5000 + b"\n--\n" + ("\u00e9" * 3000).encode())
put(G2, "equals", b'a=b\n--\n"')
put(G2, "key-inside-value", b"\n- error=\n--\n")

# ---------------------------------------------------------------- promtext
M = "promtext"
completer = """# HELP correctomatic_build_info The daemon and its version (always 1).
# TYPE correctomatic_build_info gauge
correctomatic_build_info{daemon="correctomatic-completer",version="0.1.0"} 1
# HELP process_start_time_seconds Start time of the process since the Unix epoch, in seconds.
# TYPE process_start_time_seconds gauge
process_start_time_seconds 1716200000.25
# HELP process_resident_memory_bytes Resident memory size in bytes.
# TYPE process_resident_memory_bytes gauge
process_resident_memory_bytes 7340032
# HELP correctomatic_jobs_tracked Jobs the completer follows.
# TYPE correctomatic_jobs_tracked gauge
correctomatic_jobs_tracked 3
# HELP correctomatic_jobs_taken_total Messages taken from the queue.
# TYPE correctomatic_jobs_taken_total counter
correctomatic_jobs_taken_total 120
# HELP correctomatic_jobs_finished_total Jobs finished, by outcome and reason.
# TYPE correctomatic_jobs_finished_total counter
correctomatic_jobs_finished_total{outcome="graded",reason=""} 101
correctomatic_jobs_finished_total{outcome="error",reason="time limit exceeded"} 7
correctomatic_jobs_finished_total{outcome="error",reason="quote \\" back\\\\slash\\nnewline"} 1
correctomatic_jobs_finished_total{outcome="parked",reason="bad message"} 0
# HELP correctomatic_correction_seconds Time from start to exit.
# TYPE correctomatic_correction_seconds histogram
correctomatic_correction_seconds_bucket{le="0.5"} 4
correctomatic_correction_seconds_bucket{le="+Inf"} 108
correctomatic_correction_seconds_sum 321.5
correctomatic_correction_seconds_count 108
"""
seeds = {
    "completer": completer,
    "completer-crlf": completer.replace("\n", "\r\n"),
    "completer-no-final-newline": completer.rstrip("\n"),
    "starter": 'correctomatic_build_info{daemon="correctomatic-starter",version="0.1.0"} 1\n'
        "correctomatic_running_corrections 2\ncorrectomatic_max_running 8\n"
        "correctomatic_jobs_started_total 40\n",
    "empty": "",
    "blank-lines": "\n\n  \t\n\r\n",
    "comments": "# plain\n#\n  # indented\n# TYPE m gauge\n# HELP m text \\\\ \\n\n# TYPE  m x\n# TYPE\n",
    "special-values": "a NaN\nb +Inf\nc -Inf\nd 1e400\ne -0\nf 0x1p-3\ng 4.9e-324\n",
    "timestamps": "a 1 1700000000000\nb{c=\"d\"} 2 -5\nc 3\t17  \n",
    "labels": 'm{} 1\nm { a = "1" , b="2" , } 2\nm{a="1",a="2"} 3\nm{a="{},= #"} 4\n',
    "escapes": 'm{a="\\\\",b="\\"",c="\\n",d="\\\\\\"\\n"} 1\n',
    "bytes": 'm{a="caf\u00e9 \U0001f600"} 1\n'.encode() + b'n{a="\xff\xfe"} 2\n',
    # a line that does not parse
    "bad-unterminated": 'a 1\nm{a="x} 1\n',
    "bad-escape": 'm{a="\\t"} 1\n',
    "bad-no-value": "a 1\nm\nb 2\n",
    "bad-name": "a 1\n9m 1\n",
    "bad-name-char": "m-x 1\n",
    "bad-label-name": 'm{a:b="x"} 1\n',
    "bad-timestamp": "a 1 17.5\n",
    "bad-trailing": "a 1 17 x\n",
    "bad-not-number": "a one\n",
    "nul-in-value": b"a 1\nb 1\x00x\n",
    "nul-in-label": b'm{a="x\x00y"} 1\n',
    "nul-in-comment": b"# TYPE m gauge\x00\nm 1\n",
    "nul-alone": b"\x00",
}
for name, body in seeds.items():
    put(M, name, body)
for n in (127, 128):
    put(M, "name-%d" % n, "n" * n + " 1\n")
    put(M, "label-name-%d" % n, "m{" + "l" * n + '="x"} 1\n')
for n in (255, 256):
    put(M, "label-value-%d" % n, 'm{a="' + "v" * n + '"} 1\n')
    put(M, "label-value-escaped-%d" % n, 'm{a="' + "\\n" * n + '"} 1\n')
for n in (63, 64):
    put(M, "value-%d" % n, "m " + "0" * (n - 1) + "7\n")
labels = ",".join('%s="%s"' % (c, "v" * 255) for c in "abcdefgh")
put(M, "labels-8-longest", "m" * 127 + "{" + labels + "} 1\n")
put(M, "labels-9", "m{" + ",".join('%s="1"' % c for c in "abcdefghi") + "} 1\n")
put(M, "many-lines", "".join("m_%d{i=\"%d\"} %d\n" % (i, i, i) for i in range(300)))
