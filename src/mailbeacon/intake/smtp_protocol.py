"""aiosmtpd's SMTP protocol with its per-message costs cut, same conversation on the wire.

Measured under a relay load of one connection per message, aiosmtpd spent more CPU than mailbeacon's
own handling of a message in three places, changed here:

* DATA was read line by line: it is read in large pieces (intake/smtp_data.py);
* every reply line was its own write (a system call, and a wake-up of the client): the lines of a
  multi-line reply (EHLO's) go out in one write;
* every MAIL and RCPT defined a typing Protocol class while parsing the address.
"""

from __future__ import annotations

import asyncio
from email._header_value_parser import get_addr_spec, get_angle_addr
from email.errors import HeaderParseError
from typing import AnyStr

from aiosmtpd.smtp import SMTP

from mailbeacon.intake.smtp_data import read_data


class LeanSMTP(SMTP):
    _pending_reply = b""  # the lines of a multi-line reply not written yet

    async def push(self, status: AnyStr) -> None:
        line = (
            status
            if isinstance(status, bytes)
            else status.encode("utf-8" if self.enable_SMTPUTF8 else "ascii")
        )
        if line[3:4] == b"-":  # "250-...": more lines of this reply follow
            self._pending_reply += line + b"\r\n"
            return
        reply, self._pending_reply = self._pending_reply + line + b"\r\n", b""
        self._writer.write(reply)
        await self._writer.drain()

    def _getaddr(self, arg: str) -> tuple[str | None, str | None]:
        """aiosmtpd's own parsing of a MAIL or RCPT address, without its per-call class definition."""
        if not arg:
            return "", ""
        try:
            parsed = get_angle_addr(arg) if arg.lstrip().startswith("<") else get_addr_spec(arg)
        except HeaderParseError:
            return None, None
        addr: str = parsed[0].addr_spec
        rest: str = parsed[1]
        localpart = addr.rpartition("@")[0]
        if self.local_part_limit and len(localpart) > self.local_part_limit:
            return None, None
        return addr, rest

    async def smtp_DATA(self, arg: str) -> None:
        """aiosmtpd's DATA with the content read in large pieces (see intake/smtp_data.py)."""
        if await self.check_helo_needed() or await self.check_auth_needed("DATA"):
            return
        assert self.envelope is not None
        if not self.envelope.rcpt_tos:
            await self.push("503 Error: need RCPT command")
            return
        if arg:
            await self.push("501 Syntax: DATA")
            return
        await self.push("354 End data with <CR><LF>.<CR><LF>")
        try:
            read = await read_data(self._reader, self.data_size_limit, self.line_length_limit)
        except asyncio.CancelledError:  # the connection was lost during DATA
            self._writer.close()
            raise
        if read.content is None:
            self.envelope = self._create_envelope()  # aiosmtpd's post-DATA state
            await self.push(read.refusal or "451 4.3.0 Could not read the message")
            return
        self.envelope.content = self.envelope.original_content = read.content
        status = await self._call_handler_hook("DATA")
        self.envelope = self._create_envelope()  # aiosmtpd's post-DATA state
        await self.push(status)
