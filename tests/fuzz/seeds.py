#!/usr/bin/env python3
"""seeds.py: writes the hand-made seed corpora of tests/fuzz/corpus/ (committed; run again
after changing it: python3 tests/fuzz/seeds.py).  The config seeds also take the YAML of
docs/alerts.md and deploy/errqd.yaml, the test data of the parsers."""
import os
import re
import struct
import zlib

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))


def varint(v):
    out = bytearray()
    while True:
        b = v & 0x7F
        v >>= 7
        if v:
            out.append(b | 0x80)
        else:
            out.append(b)
            return bytes(out)


def key(field, wt):
    return varint(field << 3 | wt)


def ld(field, data):
    if isinstance(data, str):
        data = data.encode()
    return key(field, 2) + varint(len(data)) + data


def vi(field, v):
    return key(field, 0) + varint(v)


def f64(field, v):
    return key(field, 1) + struct.pack('<Q', v)


def frame(function='', file='', line=0, module='', in_app=False):
    return (ld(1, function) if function else b'') + (ld(2, file) if file else b'') + \
        (vi(3, line) if line else b'') + (ld(4, module) if module else b'') + (vi(5, 1) if in_app else b'')


def failure(n=0, service='checkout', error_type='TimeoutError', message='timed out after 30s', frames=(),
            details=(), fingerprint='', event_id=None, **kw):
    eid = event_id if event_id is not None else bytes(range(n, n + 16))
    b = ld(1, eid) + f64(2, 1795629791482000000 + n) + ld(3, service)
    for i, f in ((4, 'environment'), (5, 'release'), (6, 'host'), (7, 'task')):
        if f in kw:
            b += ld(i, kw[f])
    b += ld(8, error_type)
    if 'error_code' in kw:
        b += ld(9, kw['error_code'])
    b += ld(10, message)
    for fr in frames:
        b += ld(11, frame(**fr))
    for k, v in details:
        b += ld(12, ld(1, k) + ld(2, v))
    if fingerprint:
        b += ld(13, fingerprint)
    b += vi(14, kw.get('attempt', 1)) + vi(15, 1 if kw.get('handled') else 0)
    return b


def report(seq, failures=(), outcomes=(), batch_id=b''):
    b = vi(1, seq)
    for f in failures:
        b += ld(2, f)
    for o in outcomes:
        b += ld(3, o)
    if batch_id:
        b += ld(4, batch_id)
    return b


def outcome(service='checkout', task='charge', ok=10, failed=2):
    return ld(1, service) + ld(2, task) + vi(3, ok) + vi(4, failed) + f64(5, 1795629780000000000) + vi(6, 60)


def write(target, name, data):
    d = os.path.join(HERE, 'corpus', target)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, name), 'wb') as f:
        f.write(data if isinstance(data, bytes) else data.encode())


def report_seeds():
    full = failure(1, environment='prod', release='1.2.3', host='web-1', task='charge', error_code='TIMEOUT',
                   frames=[dict(function='main', file='main.c', line=10, module='app', in_app=True),
                           dict(function='charge', file='pay.c', line=42, module='pay', in_app=True),
                           dict(function='recv', file='net.c', line=7, module='libnet')],
                   details=[('order', '12345'), ('region', 'eu-west-1')], attempt=3, handled=True)
    write('report', 'one-event', report(1, [failure(0)]))
    write('report', 'full-event', report(2, [full], [outcome()], bytes(16)))
    write('report', 'outcomes-only', report(3, [], [outcome(), outcome('api', 'get', 100, 0)], bytes(range(16))))
    write('report', 'rejections', report(4, [failure(0, service=''), failure(1, error_type=''),
                                             failure(2, event_id=b'short'),
                                             failure(3, message=b'bad \xff utf8'.decode('latin-1'))]))
    bad_utf8 = ld(1, bytes(16)) + ld(3, b'svc\xc3') + ld(8, 'E')
    write('report', 'invalid-utf8', report(5, [bad_utf8]))
    long = failure(5, message='x' * 9000, service='s' * 200, fingerprint='f' * 200,
                   frames=[dict(function='f%d' % i, file='a.c', line=i) for i in range(70)],
                   details=[('k%d' % i, 'v') for i in range(70)])
    write('report', 'truncated-fields', report(6, [long]))
    write('report', 'client-fingerprint', report(7, [failure(8, fingerprint='my-group')]))
    write('report', 'empty', b'')
    write('report', 'seq-only', vi(1, 99))
    write('report', 'malformed', report(8, [failure(0)])[:-3])


def config_seeds():
    text = open(os.path.join(ROOT, 'docs', 'alerts.md')).read()
    for i, m in enumerate(re.finditer(r'```yaml\n(.*?)```', text, re.S)):
        write('config', 'alerts-md-%d.yaml' % i, m.group(1))
    write('config', 'errqd.yaml', open(os.path.join(ROOT, 'deploy', 'errqd.yaml')).read())
    write('config', 'settings.yaml', 'listen: 127.0.0.1:0\ndatabase: /tmp/x.db\nlog_level: debug\n'
          'durability: full\ncache_mib: 64\nretention: 7d\nshutdown_timeout: 10s\n')
    write('config', 'sections.yaml', 'listen: 127.0.0.1:0\ntls:\n  cert: /etc/errq/cert.pem\n  key: /etc/errq/key.pem\n'
          '  client_ca: /etc/errq/ca.pem\n')
    write('config', 'empty.yaml', '')
    write('config', 'anchors.yaml', 'a: &x {b: [1, 2, *x]}\nrules: *x\n')
    write('config', 'flow.yaml', 'rules: [{name: r1, match: {details.k: "v*"}, group_by: [fingerprint], '
          'trip: {failures: 1, window: 1s}, notify: [n]}]\nnotifiers: [{name: n, type: log}]\n')


def normalize_seeds():
    msgs = ['timed out after 30s', 'user 12345 not found', 'request 0xdeadbeef failed',
            'id 123e4567-e89b-12d3-a456-426614174000 missing', "can't open 'file.txt': no such file",
            'commit deadbeef12 on the 3rd try, 2xx expected', 'value "x" and \'y\' and "unterminated',
            'version 1.2.3_4 at 0X1F', '\u00e9t\u00e9 \u2603 42', 'a' * 600, '1' * 300,
            # issue 16's shapes, and runs the scans must not re-read from each word
            'connection to 10.0.3.17:5432 refused, peer [2001:db8::1]:443 and fe80::1ff:fe23:4567:890a',
            'GET /api/v1/orders?id=123&token=abc failed for bob.smith@example.com at 2026-12-07T04:31:22.123Z',
            'timeout after 250ms (1h30m5.5s, 10MB, 42%) [1733545882] 2026-12-07 04:31:22+01:00',
            'token eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0In0.c2lnbmF0dXJlMTIz== `tick` it\'s',
            'a.' * 300, 'a@' * 300, '?=' * 300, '1:' * 300, '[1:' * 200]
    for i, m in enumerate(msgs):
        write('normalize', 'msg-%d' % i, bytes([i * 23 % 256]) + m.encode())


def time_seeds():
    args = [['30s'], ['250ms'], ['7d'], ['2026-11-25T18:03:11Z'], ['2026-11-25T18:03:11.482+01:00'],
            ['groups', '--since', '1h', '--until', '30m'], ['events', '--since', '2026-11-25T17:00:00Z'],
            ['status', '--timeout', '5s'], ['silence', 'add', 'r', '--for', '2h'], ['18446744073709551615ms'],
            ['9999-12-31T23:59:59Z'], ['tail', '-o', 'json', '--since', '5m']]
    for i, a in enumerate(args):
        write('time', 'args-%d' % i, '\0'.join(a))


def spool_file(payload, n_events=1, n_outcomes=0, version=1):
    h = bytearray(b'EQSB' + struct.pack('<HHIIII', version, 32, len(payload), zlib.crc32(payload), n_events,
                                        n_outcomes) + bytes(4))
    h += struct.pack('<I', zlib.crc32(bytes(h[:28])))
    return bytes(h) + payload


def spool_seeds():
    body = report(0, [failure(0)], [outcome()], bytes(16))[2:]  # without its seq
    write('spool', 'valid', b'\x00' + spool_file(body))
    write('spool', 'valid-fixup', b'\x03' + spool_file(body))
    write('spool', 'two-files', b'\x08' + spool_file(body))
    write('spool', 'tmp', b'\x04' + spool_file(body))
    write('spool', 'newer-version', b'\x00' + spool_file(body, version=2))
    write('spool', 'torn', b'\x00' + spool_file(body)[:-5])
    write('spool', 'evicted', b'\x10' + spool_file(body))
    write('spool', 'empty-payload', b'\x00' + spool_file(b'', 0, 0))
    write('spool', 'bad-name', b'\x0c' + spool_file(body))


if __name__ == '__main__':
    report_seeds()
    config_seeds()
    normalize_seeds()
    time_seeds()
    spool_seeds()
