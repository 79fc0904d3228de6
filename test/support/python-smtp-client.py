"""An SMTP client independent of mailsubmit's, for checking a test server:
Python's smtplib, its ssl module verifying against a given CA, and SCRAM-SHA-256
(RFC 5802/7677) written out here since smtplib has only PLAIN, LOGIN and
CRAM-MD5. Reads one JSON request on stdin, writes one JSON answer on stdout:
each step's reply as [code, text], stopping at the first refusal or error.

request: host (also the name the certificate must match; default 127.0.0.1),
  port, starttls (bool), cafile (verification on; without it, no verification),
  user, password, mechanism (PLAIN, LOGIN or SCRAM-SHA-256), sender,
  recipients, message (text, sent with DATA)
"""
import base64
import hashlib
import hmac
import json
import os
import smtplib
import ssl
import sys


def scram_sha256(user, password):
    """An smtplib authobject for SCRAM-SHA-256: called with no challenge for the
    initial response, then with each 334 challenge; checks the server's signature."""
    nonce = base64.b64encode(os.urandom(18)).decode()
    first_bare = f"n={user.replace('=', '=3D').replace(',', '=2C')},r={nonce}"
    state = {}

    def step(challenge=None):
        if challenge is None:
            return "n,," + first_bare
        text = challenge.decode()
        fields = dict(part.split("=", 1) for part in text.split(","))
        if "v" in fields:
            if not hmac.compare_digest(base64.b64decode(fields["v"]), state["server_signature"]):
                raise smtplib.SMTPException("SCRAM: the server's signature does not match")
            return ""
        if not fields["r"].startswith(nonce):
            raise smtplib.SMTPException("SCRAM: the server's nonce does not extend ours")
        salted = hashlib.pbkdf2_hmac("sha256", password.encode(), base64.b64decode(fields["s"]), int(fields["i"]))
        client_key = hmac.digest(salted, b"Client Key", "sha256")
        final_bare = f"c=biws,r={fields['r']}"
        auth_message = f"{first_bare},{text},{final_bare}".encode()
        signature = hmac.digest(hashlib.sha256(client_key).digest(), auth_message, "sha256")
        proof = bytes(a ^ b for a, b in zip(client_key, signature))
        state["server_signature"] = hmac.digest(hmac.digest(salted, b"Server Key", "sha256"), auth_message, "sha256")
        return f"{final_bare},p={base64.b64encode(proof).decode()}"

    return step


def features(client):
    return [" ".join(f"{name.upper()} {value}".split()) for name, value in client.esmtp_features.items()]


def converse(request, answer):
    host = request.get("host", "127.0.0.1")
    client = smtplib.SMTP(host, request["port"], timeout=20)
    try:
        answer["ehlo"] = features(client) if client.ehlo()[0] == 250 else []
        if request.get("starttls"):
            cafile = request.get("cafile")
            context = ssl.create_default_context(cafile=cafile) if cafile else ssl._create_unverified_context()
            answer["starttls"] = list(client.starttls(context=context))
            answer["starttls"][1] = answer["starttls"][1].decode()
            answer["tls_version"] = client.sock.version()
            answer["peer_verified"] = bool(cafile)
            client.ehlo()
            answer["ehlo_after_tls"] = features(client)
        if request.get("user") is not None:
            mechanism = request.get("mechanism", "PLAIN")
            client.user, client.password = request["user"], request["password"]
            authobject = {
                "PLAIN": client.auth_plain,
                "LOGIN": client.auth_login,
                "SCRAM-SHA-256": scram_sha256(request["user"], request["password"]),
            }[mechanism]
            try:
                code, text = client.auth(mechanism, authobject)
            except smtplib.SMTPAuthenticationError as refused:
                code, text = refused.smtp_code, refused.smtp_error
            answer["auth"] = [code, text.decode()]
            if code != 235:
                return
        if "sender" not in request:
            return
        answer["mail"] = reply(client.mail(request["sender"]))
        if answer["mail"][0] != 250:
            return
        answer["rcpt"] = [reply(client.rcpt(r)) for r in request["recipients"]]
        if any(code >= 400 for code, _ in answer["rcpt"]):
            return
        answer["data"] = reply(client.data(request["message"].encode()))
    finally:
        try:
            client.quit()
        except smtplib.SMTPException:
            client.close()


def reply(code_and_text):
    return [code_and_text[0], code_and_text[1].decode()]


def main():
    request = json.load(sys.stdin)
    answer = {}
    try:
        converse(request, answer)
    except (OSError, smtplib.SMTPException) as error:
        answer["error"] = f"{type(error).__name__}: {error}"
    json.dump(answer, sys.stdout)


main()
