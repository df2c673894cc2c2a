#!/usr/bin/env python3
"""A real SMTP server for the integration tests (aiosmtpd), listening on a loopback port.

Usage: smtp_sink.py DIR [--forever]. It binds 127.0.0.1 on a free port, prints the port on one line, and
writes every message it accepts into DIR as one JSON file (envelope recipients, subject, the
plain-text and HTML bodies decoded from their transfer encoding, and the raw message), first
under a temporary name and then renamed, so a reader never sees half a file. It exits when
its standard input closes, so it never outlives the test that started it; with --forever it
runs until it is killed (for scripts that start it in the background).
"""

import asyncio
import email
import email.policy
import json
import os
import sys
import uuid

from aiosmtpd.smtp import SMTP


class Sink:
    def __init__(self, directory):
        self.directory = directory

    async def handle_DATA(self, server, session, envelope):
        raw = envelope.original_content or envelope.content
        message = email.message_from_bytes(raw, policy=email.policy.default)
        bodies = {}
        for part in message.walk():
            kind = part.get_content_type()
            if kind in ("text/plain", "text/html") and kind not in bodies:
                bodies[kind] = part.get_content()
        record = {
            "mail_from": envelope.mail_from,
            "to": envelope.rcpt_tos,
            "subject": str(message.get("Subject", "")),
            "from": str(message.get("From", "")),
            "text": bodies.get("text/plain", ""),
            "html": bodies.get("text/html", ""),
            "raw": raw.decode("utf-8", "replace"),
        }
        name = uuid.uuid4().hex
        temporary = os.path.join(self.directory, name + ".tmp")
        with open(temporary, "w", encoding="utf-8") as f:
            json.dump(record, f)
        os.rename(temporary, os.path.join(self.directory, name + ".json"))
        return "250 OK"


async def main(directory, forever):
    loop = asyncio.get_running_loop()
    server = await loop.create_server(
        lambda: SMTP(Sink(directory), hostname="sink.test"), "127.0.0.1", 0
    )
    print(server.sockets[0].getsockname()[1], flush=True)
    if forever:
        await server.serve_forever()
    await loop.run_in_executor(None, sys.stdin.read)
    server.close()


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], "--forever" in sys.argv[2:]))
