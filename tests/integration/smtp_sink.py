#!/usr/bin/python3 -W ignore
"""A local SMTP sink for the e-mail notifier's test (Debian's python3-aiosmtpd).

usage: smtp_sink.py DIR [USER PASSWORD]

Listens on an ephemeral 127.0.0.1 port, writes the port to DIR/port (through a rename),
and stores each message received as DIR/NNN.eml: "X-Sink-Mail-From:", "X-Sink-Rcpt-To:"
and "X-Sink-Auth:" lines (the envelope and who logged in), then the message as received.
With USER and PASSWORD, AUTH is required (over plain TCP: a loopback test) and only that
pair is accepted.  With SINK_TLS_CERT and SINK_TLS_KEY in the environment, STARTTLS is offered
with that certificate and required before MAIL; "X-Sink-TLS:" says whether the message came
over TLS.  Runs until killed (SIGTERM)."""
import asyncio
import os
import ssl
import sys

from aiosmtpd.smtp import SMTP, AuthResult, LoginPassword

outdir = sys.argv[1]
creds = (sys.argv[2], sys.argv[3]) if len(sys.argv) == 4 else None


class Handler:
    async def handle_DATA(self, server, session, envelope):
        n = len([f for f in os.listdir(outdir) if f.endswith(".eml")])
        path = os.path.join(outdir, "%03d.eml" % n)
        who = session.auth_data.login.decode() if isinstance(session.auth_data, LoginPassword) else ""
        head = "X-Sink-Mail-From: %s\r\nX-Sink-Rcpt-To: %s\r\nX-Sink-Auth: %s\r\nX-Sink-TLS: %s\r\n" % (
            envelope.mail_from, ",".join(envelope.rcpt_tos), who, "yes" if session.ssl is not None else "no")
        with open(path + ".tmp", "wb") as f:
            f.write(head.encode() + envelope.original_content)
        os.rename(path + ".tmp", path)
        return "250 OK"


def authenticator(server, session, envelope, mechanism, auth_data):
    ok = isinstance(auth_data, LoginPassword) and creds and \
        (auth_data.login.decode(), auth_data.password.decode()) == creds
    return AuthResult(success=bool(ok), handled=False, auth_data=auth_data)


async def main():
    loop = asyncio.get_running_loop()
    kw = {}
    if creds:
        kw = dict(authenticator=authenticator, auth_required=True, auth_require_tls=False)
    if os.environ.get("SINK_TLS_CERT"):
        ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        ctx.load_cert_chain(os.environ["SINK_TLS_CERT"], os.environ["SINK_TLS_KEY"])
        kw.update(tls_context=ctx, require_starttls=True)
    server = await loop.create_server(lambda: SMTP(Handler(), **kw), "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    with open(os.path.join(outdir, "port.tmp"), "w") as f:
        f.write("%d\n" % port)
    os.rename(os.path.join(outdir, "port.tmp"), os.path.join(outdir, "port"))
    await server.serve_forever()


asyncio.run(main())
