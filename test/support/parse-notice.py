#!/usr/bin/python3
"""Reads a delivery status notice on stdin and prints, as JSON, what
Python's email package (and flufl.bounce, Debian's bounce detector) make
of it: an independent reading of what delivery-status-notice.ts writes."""
import email
import email.policy
import hashlib
import json
import sys

raw = sys.stdin.buffer.read()
message = email.message_from_bytes(raw, policy=email.policy.compat32)


def fields(block):
    return {name.lower(): ' '.join(str(value).split()) for name, value in block.items()}


def status_blocks(part):
    """message/delivery-status comes parsed as header blocks; the global form is parsed here the same way."""
    payload = part.get_payload()
    if isinstance(payload, list) and part.get_content_type() == 'message/delivery-status':
        return [fields(block) for block in payload]
    if isinstance(payload, list):  # message/global-delivery-status: taken for one message/* part
        text = payload[0].as_bytes(policy=email.policy.compat32.clone(linesep='\n')).decode('utf-8', 'surrogateescape')
    else:
        text = payload.encode('ascii', 'surrogateescape').decode('utf-8', 'surrogateescape') if isinstance(payload, str) else payload
    text = text.replace('\r\n', '\n')
    return [fields(email.message_from_string(block + '\n')) for block in text.strip('\n').split('\n\n')]


def body_bytes(msg):
    payload = msg.get_payload()
    if isinstance(payload, list):
        return msg.as_bytes().split(b'\n\n', 1)[1] if b'\n\n' in msg.as_bytes() else b''
    return msg.get_payload(decode=True).replace(b'\r\n', b'\n')


parts = message.get_payload() if message.is_multipart() else []
out = {
    'headers': {name.lower(): str(value) for name, value in message.items()},
    'contentType': message.get_content_type(),
    'reportType': message.get_param('report-type'),
    'boundary': message.get_boundary(),
    'defects': [type(d).__name__ for part in message.walk() for d in part.defects],
    'parts': [{'contentType': p.get_content_type(), 'description': p.get('Content-Description'), 'encoding': p.get('Content-Transfer-Encoding'), 'charset': p.get_content_charset()} for p in parts],
    'maxLineOctets': max(len(line) for line in raw.split(b'\r\n')),
    'bareLf': raw.replace(b'\r\n', b'').count(b'\n'),
}
for part in parts:
    kind = part.get_content_type()
    if kind == 'text/plain':
        out['text'] = part.get_payload(decode=True).decode(part.get_content_charset() or 'ascii').replace('\r\n', '\n')
    elif kind in ('message/delivery-status', 'message/global-delivery-status'):
        blocks = status_blocks(part)
        out['perMessage'] = blocks[0]
        out['recipients'] = blocks[1:]
    elif kind in ('message/rfc822', 'message/global', 'message/global-headers'):
        returned = part.get_payload()[0]
        body = body_bytes(returned)
        out['returned'] = {
            'headers': [[name, ' '.join(str(value).split())] for name, value in returned.items()],
            'bodyOctets': len(body),
            'bodySha256': hashlib.sha256(body).hexdigest(),
            'body': body.decode('utf-8', 'replace') if len(body) < 4096 else None,
        }
    elif kind == 'text/rfc822-headers':
        text = part.get_payload().encode('ascii', 'surrogateescape').decode('utf-8', 'replace').replace('\r\n', '\n')
        returned = email.message_from_string(text)
        out['returned'] = {'headers': [[name, ' '.join(str(value).split())] for name, value in returned.items()], 'bodyOctets': len(returned.get_payload())}

try:
    from flufl.bounce import all_failures
    temporary, permanent = all_failures(message)
    out['flufl'] = {'temporary': sorted(a.decode() for a in temporary), 'permanent': sorted(a.decode() for a in permanent)}
except ImportError:
    out['flufl'] = None

json.dump(out, sys.stdout)
