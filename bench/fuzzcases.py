"""The cases bench/fuzz.py runs: real list mail as seeds, the mutators that make it hostile,
and the deterministic choice of case ``index`` of run ``seed`` (see fuzz.py for the run)."""

from __future__ import annotations

import base64
import gzip
import quopri
import random
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

# -- seeds --------------------------------------------------------------------------------


@dataclass
class Seeds:
    mails: list[bytes]  # raw messages, mbox quoting undone
    diffs: list[bytes]  # the diffs of the patch mails among them

    @classmethod
    def load(cls, paths: list[Path]) -> Seeds:
        from reviewbot.mail.read import iter_stream

        mails: list[bytes] = []
        for path in paths:
            opener = gzip.open if path.read_bytes()[:2] == b"\x1f\x8b" else open
            with opener(path, "rb") as stream:  # type: ignore[operator]
                mails.extend(raw.data for raw in iter_stream(stream, str(path)))
        diffs = []
        for mail in mails:
            at = mail.find(b"\ndiff --git ")
            if at >= 0:
                end = mail.find(b"\n-- \n", at)
                diffs.append(mail[at + 1 : end + 1 if end >= 0 else len(mail)])
        return cls(mails, diffs or [_TINY_DIFF])


_TINY_DIFF = (
    b"diff --git a/mm/memcontrol.c b/mm/memcontrol.c\nindex 1111111..2222222 100644\n"
    b"--- a/mm/memcontrol.c\n+++ b/mm/memcontrol.c\n@@ -1,3 +1,3 @@\n a\n-b\n+c\n d\n"
)


# -- mail surgery -------------------------------------------------------------------------

_HEADER_NAMES = [b"From", b"Subject", b"Message-ID", b"In-Reply-To", b"References", b"Date",
                 b"Content-Type", b"Content-Transfer-Encoding", b"To", b"Cc"]


def split_mail(mail: bytes) -> tuple[bytes, bytes]:
    at = mail.find(b"\n\n")
    return (mail, b"") if at < 0 else (mail[:at + 1], mail[at + 2:])


def join_mail(head: bytes, body: bytes) -> bytes:
    return head + (b"" if head.endswith(b"\n") else b"\n") + b"\n" + body


def drop_header(head: bytes, name: bytes) -> bytes:
    """The header block without every ``name:`` header (and its folded lines)."""
    # "*+": a plain "*" keeps a backtracking entry per folded line (500 MB for huge ones).
    pattern = re.compile(rb"(?im)^" + re.escape(name) + rb"[ \t]*:.*\n(?:[ \t].*\n)*+")
    return pattern.sub(b"", head)


def set_header(head: bytes, name: bytes, value: bytes) -> bytes:
    return drop_header(head, name) + name + b": " + value + b"\n"


def set_body_type(mail: bytes, ctype: bytes, cte: bytes | None, body: bytes) -> bytes:
    head, _ = split_mail(mail)
    head = set_header(head, b"Content-Type", ctype)
    head = drop_header(head, b"Content-Transfer-Encoding")
    if cte is not None:
        head += b"Content-Transfer-Encoding: " + cte + b"\n"
    return join_mail(head, body)


def header_value(head: bytes, name: bytes) -> bytes | None:
    match = re.search(rb"(?im)^" + re.escape(name) + rb"[ \t]*:[ \t]*(.*)", head)
    return match.group(1) if match else None


# No mutation makes a mail larger than this: a little over mail.max_message_bytes (20 MiB),
# so the size limit is exercised, without a case eating the machine's memory.
MAX_MAIL_BYTES = 21 << 20


def _repeat(unit: bytes, times: int, budget: int = 8 << 20) -> bytes:
    """``unit * times``, at most ``budget`` bytes of it."""
    return unit * max(1, min(times, budget // max(len(unit), 1)))


def _big(rng: random.Random) -> int:
    """A size that is usually modest and sometimes huge (log-uniform up to a million)."""
    return int(10 ** rng.uniform(1, 6))


# -- mutators: each takes (rng, mail, case) and returns the new mail -----------------------


@dataclass
class CaseContext:
    ids: list[bytes]  # Message-IDs of the case's mails (for reference cycles)
    seeds: Seeds
    scale: float = 1.0  # < 1: large sizes shrink (the test suite's quick run)

    def size(self, n: int) -> int:
        """``n``, or with a scale below 1 and n over 1000, a smaller size (at least 1000)."""
        return n if self.scale >= 1 or n <= 1000 else max(1000, int(n * self.scale))

    def big(self, rng: random.Random) -> int:
        return self.size(_big(rng))


Mutator = Callable[[random.Random, bytes, CaseContext], bytes]


def flip_bytes(rng: random.Random, mail: bytes, ctx: CaseContext) -> bytes:
    data = bytearray(mail)
    for _ in range(rng.randint(1, 20)):
        if data:
            data[rng.randrange(len(data))] = rng.randrange(256)
    return bytes(data)


def truncate(rng: random.Random, mail: bytes, ctx: CaseContext) -> bytes:
    return mail[: rng.randrange(len(mail) + 1)]


def insert_junk(rng: random.Random, mail: bytes, ctx: CaseContext) -> bytes:
    pos = rng.randrange(len(mail) + 1)
    junk = bytes(rng.randrange(256) for _ in range(rng.randint(1, 64)))
    return mail[:pos] + junk + mail[pos:]


def splice(rng: random.Random, mail: bytes, ctx: CaseContext) -> bytes:
    other = rng.choice(ctx.seeds.mails)
    a, b = sorted(rng.randrange(len(other) + 1) for _ in range(2))
    pos = rng.randrange(len(mail) + 1)
    return mail[:pos] + other[a:b] + mail[pos:]


def duplicate_header(rng: random.Random, mail: bytes, ctx: CaseContext) -> bytes:
    head, body = split_mail(mail)
    name = rng.choice(_HEADER_NAMES)
    value = header_value(head, name) or b"x"
    times = min(ctx.size(rng.choice([1, 2, 10, 1000, 20000])), (8 << 20) // (len(value) + 20))
    extra = b"".join(
        name + b": " + (value if rng.random() < 0.5 else value + b" " + str(i).encode()) + b"\n"
        for i in range(max(times, 1))
    )
    return join_mail(head + extra if rng.random() < 0.5 else extra + head, body)


def huge_header(rng: random.Random, mail: bytes, ctx: CaseContext) -> bytes:
    head, body = split_mail(mail)
    n = ctx.big(rng) * rng.choice([1, 4])
    name = rng.choice([b"X-Huge", b"Subject", b"From", b"Cc", b"References", b"Content-Type"])
    value = rng.choice([
        b"a" * n,
        b"a\n " * n,  # folded over a million lines
        b"<x@y> " * (n // 6 + 1),
        b"=?utf-8?q?a?= " * (n // 14 + 1),
        b"text/plain; " + b"x=y; " * (n // 5 + 1),
        b"\t" * n,
    ])
    return join_mail(set_header(head, name, value) if name != b"X-Huge" else head + name + b": " + value + b"\n", body)


def huge_subject(rng: random.Random, mail: bytes, ctx: CaseContext) -> bytes:
    head, body = split_mail(mail)
    n = ctx.big(rng)
    value = rng.choice([
        b"[PATCH " * n,
        b"Re: " * n,
        b"[" * n + b"PATCH" + b"]" * n,
        b"[PATCH v99999999999999999999 99999/99999] x",
        b"[PATCH 1/" + b"9" * n + b"] x",
        b"[PATCH" + b" v2" * n + b"] x",
        b"PATCH" + b"1/8 " * n,
        b"[PATCH] " + b"x" * n,
        b"Re[" + b"9" * n + b"]: x",
    ])
    return join_mail(set_header(head, b"Subject", value), body)


def _hostile_address(rng: random.Random, ctx: CaseContext) -> bytes:
    n = ctx.size(rng.choice([1, 10, 100, 1000, 10000]))
    return rng.choice([
        b'"a:" ' * n,
        b"a: " * n,
        b"@example.com",
        b"@example.com, " * n,
        b"<@a,@b:c@d>",
        b"<" * n + b"a@b" + b">" * n,
        b"(" * n + b"a@b",
        b"a@b@c@d" * n,
        b'"' * n + b"a@b",
        b"undisclosed-recipients:;",
        b"g: a@b, c@d;" * n,
        b"=?utf-8?q?=22a=3A=22?= <a@b>",
        b"\\" * n + b"a@b",
        b"a@[" + b"1." * n + b"]",
        b"Name <" + b"a" * n + b"@" + b"b" * n + b">",
        b"=?utf-8?b?" + base64.b64encode(b"Evil\r\nBcc: x@y") + b"?= <a@b.c>",
        b":" * n,
        b"<>",
        b"",
    ])


def odd_address(rng: random.Random, mail: bytes, ctx: CaseContext) -> bytes:
    head, body = split_mail(mail)
    name = rng.choice([b"From", b"Cc", b"To"])
    return join_mail(set_header(head, name, _hostile_address(rng, ctx)), body)


def odd_date(rng: random.Random, mail: bytes, ctx: CaseContext) -> bytes:
    head, body = split_mail(mail)
    value = rng.choice([
        b"Mon, 1 Jun 2020 10:00:00 +2400",
        b"Mon, 1 Jun 2020 10:00:00 -9999",
        b"1 Jun 2020 10:00:00 +99999",
        b"Mon, 1 Jun 2020 10:00:00 +2360",
        b"Mon, 1 Jun 0 10:00:00 +0000",
        b"Mon, 1 Jun 99999 10:00:00 +0000",
        b"Mon, 99 Jun 2020 99:99:99 +0000",
        b"Mon, 1 Jun 2020 10:00:00",
        b"Mon, 1 Jun 2020 10:00:00 -0000",
        b"Mon, 1 Jun 2020 10:00:00 GMT+" + b"9" * rng.randint(1, 40),
        b"1" * rng.randint(1, 5000),
        b"Mon, 1 Jun " + b"9" * rng.randint(5, 400) + b" 10:00:00 +0000",
        b"Thu, 1 Jan 1970 00:00:00 +0000",
        b"garbage",
        b"",
        b"Mon, 1 Jun 2020 10:00:00 +0200 (" + b"x" * rng.randint(1, 10000) + b")",
    ])
    return join_mail(set_header(head, b"Date", value), body)


_CHARSETS = [
    b"us-ascii", b"utf-8", b"iso-8859-1", b"iso-8859-15", b"windows-1252", b"koi8-r",
    b"gb2312", b"gbk", b"gb18030", b"big5", b"euc-jp", b"iso-2022-jp", b"shift_jis", b"euc-kr",
    b"punycode", b"unicode_escape", b"raw_unicode_escape", b"utf-7", b"utf-16", b"utf-32",
    b"idna", b"rot13", b"base64", b"hex", b"zlib", b"bz2", b"uu", b"quopri", b"mbcs",
    b"x-unknown", b"unknown-8bit", b"", b"utf-8\x00", b"a" * 5000, b"\"utf-8\"", b"UTF8",
    b"utf_8_sig", b"cp037", b"undefined", b"charmap", b"palmos", b"string_escape",
]


def odd_charset(rng: random.Random, mail: bytes, ctx: CaseContext) -> bytes:
    head, body = split_mail(mail)
    charset = rng.choice(_CHARSETS)
    if charset == b"punycode" and rng.random() < 0.5:
        # A punycode body decodes in quadratic time unless refused (5.5 s for 298 KB).
        body = b"a" * ctx.big(rng) + b"-" + b"b" * ctx.big(rng)
    elif charset in (b"unicode_escape", b"raw_unicode_escape") and rng.random() < 0.5:
        body = body + b"\\ud800 \\U00110000 \\N{" + b"x" * ctx.big(rng) + b"\n"
    elif charset == b"utf-7" and rng.random() < 0.5:
        body = body + b"+2AA- +" + b"A" * ctx.big(rng) + b"\n"
    ctype = b"text/plain; charset=" + charset
    return join_mail(set_header(head, b"Content-Type", ctype), body)


def odd_transfer_encoding(rng: random.Random, mail: bytes, ctx: CaseContext) -> bytes:
    head, body = split_mail(mail)
    cte = rng.choice([b"base64", b"quoted-printable", b"x-uuencode", b"uuencode", b"binary",
                      b"8bit", b"7bit", b"x-unknown", b"BASE64", b"base64 ; junk", b""])
    how = rng.randrange(4)
    if cte.lower().startswith(b"base64"):
        body = base64.encodebytes(body)
        if how == 1:
            body = body.replace(b"=", b"")  # no padding
        elif how == 2:
            body = body[: len(body) // 2] + b"!!*&^" + body[len(body) // 2 :]
        elif how == 3:
            body = b"====" * ctx.big(rng)
    elif cte == b"quoted-printable":
        body = quopri.encodestring(body)
        if how == 1:
            body += b"=ZZ=\n=" + b"=0" * ctx.big(rng)
        elif how == 2:
            body = b"=\n" * ctx.big(rng)
    elif cte.endswith(b"uuencode"):
        body = b"begin 644 x\n" + b"M" + b"!" * 60 + b"\n`\nend\n"
    head = drop_header(head, b"Content-Transfer-Encoding") + b"Content-Transfer-Encoding: " + cte + b"\n"
    return join_mail(head, body)


def nul_bytes(rng: random.Random, mail: bytes, ctx: CaseContext) -> bytes:
    data = bytearray(mail)
    head_end = max(mail.find(b"\n\n"), 1)
    for _ in range(rng.randint(1, 10)):
        pos = rng.randrange(head_end) if rng.random() < 0.5 else rng.randrange(len(data) + 1)
        data[pos:pos] = b"\x00" * rng.choice([1, 1, 3, 1000])
    return bytes(data)


def carriage_returns(rng: random.Random, mail: bytes, ctx: CaseContext) -> bytes:
    head, body = split_mail(mail)
    how = rng.randrange(5)
    if how == 0:  # lone CR inside header values
        head = re.sub(rb"(?m)^((?:From|Subject|Cc|To|Message-ID|References|Date):[^\n]{0,8})",
                      lambda m: m.group(1) + b"\r", head)
    elif how == 1:  # CR-only line ends
        return mail.replace(b"\n", b"\r")
    elif how == 2:  # CRLF everywhere
        return mail.replace(b"\n", b"\r\n")
    elif how == 3:  # CR LF inside encoded words (header injection in replies)
        value = b"=?utf-8?q?x=0D=0ABcc:_evil@example.com=0D=0A=0D=0Abody?="
        name = rng.choice([b"Subject", b"From", b"References", b"Message-ID", b"In-Reply-To"])
        head = set_header(head, name, (b"<" + value + b"@x>") if name != b"From" else value)
    else:  # mixed line ends in the body
        body = body.replace(b"\n", rng.choice([b"\r\n", b"\r", b"\n\r"]), rng.randint(1, 50))
    return join_mail(head, body)


def lone_surrogates(rng: random.Random, mail: bytes, ctx: CaseContext) -> bytes:
    head, body = split_mail(mail)
    how = rng.randrange(4)
    if how == 0:  # UTF-8-encoded surrogates (invalid UTF-8) in headers and body
        head = head.replace(b"Subject: ", b"Subject: \xed\xa0\x80", 1)
        head = head.replace(b"From: ", b"From: \xed\xb2\x80 ", 1)
        body = body.replace(b"\n+", b"\n+\xed\xa0\x80", 3)
    elif how == 1:  # encoded words in charsets that can produce surrogates
        word = rng.choice([b"=?utf-7?q?+2AA-?=", b"=?unicode_escape?q?=5Cud800?=",
                           b"=?raw_unicode_escape?q?=5Cudc80?=", b"=?utf-16?b?ANg=?="])
        head = set_header(head, rng.choice([b"From", b"Subject"]), word + b" <a@b.c>")
    elif how == 2:  # a body in such a charset
        head = set_header(head, b"Content-Type", b"text/plain; charset=utf-7")
        body = body.replace(b"\n+", b"\n++2AA-", 3)
    else:
        head = set_header(head, b"Content-Type", b"text/plain; charset=unicode_escape")
        body = body.replace(b"\n+", b"\n+\\ud800", 3)
    return join_mail(head, body)


def encoded_words(rng: random.Random, mail: bytes, ctx: CaseContext) -> bytes:
    head, body = split_mail(mail)
    inner = b"[PATCH 1/2] x"
    how = rng.randrange(5)
    if how == 0:  # nested: an encoded word whose text is an encoded word, many times
        for _ in range(rng.choice([2, 10, 50])):
            if len(inner) > ctx.size(1 << 20):  # each level is a third larger
                break
            inner = b"=?utf-8?b?" + base64.b64encode(inner) + b"?="
    elif how == 1:  # many
        inner = b" ".join(b"=?utf-8?q?a" + str(i).encode() + b"?=" for i in range(ctx.big(rng) // 10 + 1))
    elif how == 2:  # malformed
        inner = rng.choice([b"=?", b"=?utf-8?", b"=?utf-8?x?abc?=", b"=?utf-8?b?!!!?=",
                            b"=?utf-8?q?=ZZ?=", b"=?" * ctx.big(rng), b"=?utf-8?b?YQ?==?utf-8?b?YQ?="])
    elif how == 3:  # odd charsets
        inner = b"=?" + rng.choice(_CHARSETS) + b"?q?abc?= [PATCH] y"
    else:  # unterminated: the stdlib's regex scanned to the end from each one
        inner = _repeat(rng.choice([b"=?a?q?x ", b"=?utf-8?b?", b"=?x?"]), ctx.big(rng) // 5 + 1)
    name = rng.choice([b"Subject", b"From", b"Cc"])
    return join_mail(set_header(head, name, inner + (b" <a@b.c>" if name == b"From" else b"")), body)


def message_links(rng: random.Random, mail: bytes, ctx: CaseContext) -> bytes:
    head, body = split_mail(mail)
    own = header_value(head, b"Message-ID") or b"<self@x>"
    other = rng.choice(ctx.ids) if ctx.ids else own
    how = rng.randrange(6)
    if how == 0:  # replies to itself
        head = set_header(head, b"In-Reply-To", own)
        head = set_header(head, b"References", own)
    elif how == 1:  # a cycle through another mail of the case
        head = set_header(head, b"In-Reply-To", other)
        head = set_header(head, b"References", other + b" " + own)
    elif how == 2:
        head = set_header(head, b"References", b" ".join(b"<r%d@x>" % i for i in range(ctx.big(rng) // 10 + 1)))
    elif how == 3:
        head = set_header(head, b"Message-ID", rng.choice([b"", b"<>", b"<<>>", b"<a b>", b"<" + b"x" * ctx.big(rng) + b">"]))
    elif how == 4:  # the same Message-ID as another mail of the case
        head = set_header(head, b"Message-ID", other)
    else:
        head = drop_header(head, b"Message-ID")
    return join_mail(head, body)


# -- MIME structure ---------------------------------------------------------------------------


def _part(ctype: bytes, body: bytes, extra: bytes = b"") -> bytes:
    return b"Content-Type: " + ctype + b"\n" + extra + b"\n" + body


def to_multipart(rng: random.Random, mail: bytes, ctx: CaseContext) -> bytes:
    _, body = split_mail(mail)
    boundary = rng.choice([b"b1", b"=_x", b"", b"a" * 5000, b"--", b" ", b"\"q\""])
    parts = [
        _part(b"text/plain; charset=utf-8", body),
        _part(b"text/x-patch; name=\"x.patch\"", rng.choice(ctx.seeds.diffs),
              b"Content-Disposition: attachment; filename=\"x.patch\"\n"),
        _part(b"text/html", b"<p>x</p>\n"),
        _part(b"application/octet-stream", b"\x00\x01" * 10),
        _part(b"message/rfc822", mail),
        _part(b"text/plain; name*=utf-8''%E2%82%AC.patch", body),
        _part(b"text/plain; charset=" + rng.choice(_CHARSETS), body),
        b"no header at all\n",
        b"",
    ]
    chosen = [rng.choice(parts) for _ in range(rng.randint(1, 5))]
    delim = b"--" + boundary.strip(b"\"")
    out = b"preamble\n"
    for part in chosen:
        out += delim + b"\n" + part + b"\n"
    how = rng.randrange(5)
    if how == 0:
        out += delim + b"--\n"
    elif how == 1:
        out += delim + b"--   trailing junk\n"
    elif how == 2:
        out += delim[:-1] + b"--\n"  # a closing delimiter that does not match
    elif how == 3:
        out = out.replace(delim, delim + b"x", 1)
    ctype = rng.choice([b"multipart/mixed", b"multipart/alternative", b"multipart/signed",
                        b"multipart/digest", b"multipart/related", b"message/rfc822", b"multipart/x"])
    return set_body_type(mail, ctype + b"; boundary=" + boundary, None, out)


def deep_nesting(rng: random.Random, mail: bytes, ctx: CaseContext) -> bytes:
    _, body = split_mail(mail)
    depth = ctx.size(rng.choice([6, 50, 500, 2000, 20000]))
    closed = rng.random() < 0.7
    if rng.random() < 0.7:
        opening = []
        for i in range(depth):
            opening.append(b"--b%d\nContent-Type: multipart/mixed; boundary=b%d\n\n" % (i, i + 1))
        inner = b"--b%d\nContent-Type: text/plain\n\n" % depth + body + b"\n--b%d--\n" % depth
        closing = [b"--b%d--\n" % i for i in range(depth - 1, -1, -1)] if closed else []
        payload = b"".join(opening) + inner + b"".join(closing)
        return set_body_type(mail, b"multipart/mixed; boundary=b0", None, payload)
    # message/rfc822 inside message/rfc822
    payload = b"Content-Type: text/plain\n\n" + body
    for _ in range(depth):
        payload = b"Content-Type: message/rfc822\n\n" + payload
    return set_body_type(mail, b"message/rfc822", None, payload.split(b"\n\n", 1)[1])


def break_boundary(rng: random.Random, mail: bytes, ctx: CaseContext) -> bytes:
    match = re.search(rb"boundary=\"?([^\";\s]+)", mail)
    if match is None:
        return to_multipart(rng, mail, ctx)
    boundary = match.group(1)
    how = rng.randrange(5)
    if how == 0:  # no closing delimiter
        return mail.replace(b"--" + boundary + b"--", b"")
    if how == 1:  # the declared boundary differs from the one used
        return mail.replace(b"boundary=", b"boundary=x", 1)
    if how == 2:  # delimiters without line breaks
        return mail.replace(b"\n--" + boundary, b"--" + boundary)
    if how == 3:  # a huge number of empty parts
        return mail.replace(b"--" + boundary + b"--", _repeat(b"--" + boundary + b"\n\n", ctx.big(rng)) + b"--" + boundary + b"--", 1)
    return mail.replace(b"boundary=", b"boundary*0=", 1)  # RFC 2231 continuation


# -- diffs ----------------------------------------------------------------------------------


def _with_diff(rng: random.Random, mail: bytes, ctx: CaseContext, edit: Callable[[bytes], bytes]) -> bytes:
    """The mail with its diff (or a real one from another mail, appended) edited."""
    at = mail.find(b"\ndiff --git ")
    if at < 0:
        mail = mail + b"---\n" + rng.choice(ctx.seeds.diffs)
        at = mail.find(b"\ndiff --git ")
    end = mail.find(b"\n-- \n", at)
    end = len(mail) if end < 0 else end + 1
    return mail[: at + 1] + edit(mail[at + 1 : end]) + mail[end:]


def huge_hunk(rng: random.Random, mail: bytes, ctx: CaseContext) -> bytes:
    n = ctx.size(rng.choice([1000, 10000, 60000, 110000]))
    fix_counts = rng.random() < 0.5

    def edit(diff: bytes) -> bytes:
        at = diff.find(b"\n@@ ")
        if at < 0:
            return diff
        eol = diff.find(b"\n", at + 1)
        header = b"@@ -1,1 +1,%d @@" % (n + 1) if fix_counts else diff[at + 1 : eol]
        return diff[: at + 1] + header + b"\n" + b"+\tx = y;\n" * n + b" z\n" + diff[eol + 1 :]

    return _with_diff(rng, mail, ctx, edit)


def hunk_counts(rng: random.Random, mail: bytes, ctx: CaseContext) -> bytes:
    header = rng.choice([b"@@ -1,99999999999999999999 +1,0 @@", b"@@ -0,0 +0,0 @@", b"@@ -1 +1 @@",
                         b"@@ -1,-5 +1,5 @@", b"@@ -a,b +c,d @@", b"@@ @@", b"@@@ -1,2 -1,2 +1,3 @@@"])
    return _with_diff(rng, mail, ctx, lambda d: re.sub(rb"(?m)^@@ [^\n]*@@", lambda _: header, d, count=rng.randint(1, 5)))


def odd_paths(rng: random.Random, mail: bytes, ctx: CaseContext) -> bytes:
    path = rng.choice([b"../../etc/passwd", b"/etc/passwd", b"a/../../../x", b"\"a/\\303\\244 b\"",
                       b"mm/" + b"x" * ctx.big(rng), b"mm/a\x00b.c", b"mm/a b.c", b".git/config",
                       b"", b"/dev/null", b"mm/.." * 100])

    def edit(diff: bytes) -> bytes:
        diff = re.sub(rb"(?m)^diff --git a/\S+ b/\S+", b"diff --git a/" + path + b" b/" + path, diff, count=1)
        diff = re.sub(rb"(?m)^--- (a/)?\S+", b"--- " + rng.choice([b"a/", b""]) + path, diff, count=1)
        return re.sub(rb"(?m)^\+\+\+ (b/)?\S+", b"+++ " + rng.choice([b"b/", b""]) + path, diff, count=1)

    return _with_diff(rng, mail, ctx, edit)


def binary_patch(rng: random.Random, mail: bytes, ctx: CaseContext) -> bytes:
    block = rng.choice([
        b"diff --git a/x.bin b/x.bin\nnew file mode 100644\nindex 0000000..1111111\nGIT binary patch\n"
        b"literal 12\nTcmZ?wbhEHbRA4w" + b"!" * ctx.big(rng) + b"\n\nliteral 0\nHcmV?d00001\n\n",
        b"diff --git a/x.bin b/x.bin\nindex 1111111..2222222 100644\nBinary files a/x.bin and b/x.bin differ\n",
        b"diff --git a/x b/x\nGIT binary patch\ndelta " + b"9" * 30 + b"\n" + bytes(range(256)) + b"\n",
    ])
    return _with_diff(rng, mail, ctx, lambda d: block + d if rng.random() < 0.5 else block)


def rename_or_symlink(rng: random.Random, mail: bytes, ctx: CaseContext) -> bytes:
    block = rng.choice([
        b"diff --git a/mm/a.c b/mm/b.c\nsimilarity index 100%\nrename from mm/a.c\nrename to mm/b.c\n",
        b"diff --git a/mm/a.c b/../b.c\nsimilarity index 90%\nrename from mm/a.c\nrename to ../b.c\n",
        b"diff --git a/mm/a.c b/mm/c.c\ncopy from mm/a.c\ncopy to /etc/c.c\n",
        b"diff --git a/l b/l\nnew file mode 120000\nindex 0000000..1111111\n--- /dev/null\n+++ b/l\n"
        b"@@ -0,0 +1 @@\n+/etc/shadow\n\\ No newline at end of file\n",
        b"diff --git a/x b/x\nold mode 100644\nnew mode 100755\n",
        b"diff --git a/x b/x\nold mode 9999999999999\nnew mode garbage\n",
        b"diff --git a/x b/x\ndeleted file mode 100644\n",
    ])
    return _with_diff(rng, mail, ctx, lambda d: block * ctx.size(rng.choice([1, 1, 100, 5000])) + d)


def diff_noise(rng: random.Random, mail: bytes, ctx: CaseContext) -> bytes:
    def edit(diff: bytes) -> bytes:
        lines = diff.split(b"\n")
        for _ in range(rng.randint(1, 20)):
            pos = rng.randrange(len(lines) + 1)
            lines.insert(pos, rng.choice([b"diff ", b"\\ No newline at end of file", b"-- ", b"",
                                          b"@@ -1 +1 @@", b"index ", b"--- ", b"+++ ", b"diff --git a/ b/",
                                          b"\\", b" \r", b"+" * 5000]))
        if rng.random() < 0.3:
            lines = [ln[1:] if ln.startswith(b" ") else ln for ln in lines]  # a mailer ate blanks
        return b"\n".join(lines)

    return _with_diff(rng, mail, ctx, edit)


def many_files(rng: random.Random, mail: bytes, ctx: CaseContext) -> bytes:
    section = rng.choice(ctx.seeds.diffs)
    first = section.find(b"\ndiff --git ", 1)
    section = section if first < 0 else section[: first + 1]
    return _with_diff(rng, mail, ctx, lambda d: d + _repeat(section, ctx.size(rng.choice([10, 1000, 5000]))))


def trailer_flood(rng: random.Random, mail: bytes, ctx: CaseContext) -> bytes:
    head, body = split_mail(mail)
    line = rng.choice([b"Acked-by: A <a@b.c>\n", b"Fixes: " + b"a" * 5000 + b" (\"x\n", b"a" * 50000 + b":\n",
                       b"Reviewed-by: " + b"x" * ctx.big(rng) + b"@y.z\n", b"x" + b":" * ctx.big(rng) + b" y\n",
                       b"Signed-off-by: A\n<a@b.c>\n", b"Cc: " + b"@example.com, " * 1000 + b"\n",
                       b"base-commit: " + b"a" * 64 + b"\n", b"change-id: " + b"x" * ctx.big(rng) + b"\n"])
    block = _repeat(line, ctx.size(rng.choice([1, 10, 1000, 20000])))
    at = body.find(b"\n---\n")
    body = body[:at] + b"\n" + block + body[at:] if at >= 0 else body + b"\n" + block
    return join_mail(head, body)


def mbox_quoting(rng: random.Random, mail: bytes, ctx: CaseContext) -> bytes:
    head, body = split_mail(mail)
    return join_mail(head, body.replace(b"\n", b"\n\nFrom x\n>From y\n>>From z\n", rng.randint(1, 5)))


MUTATORS: list[tuple[Mutator, int]] = [
    (flip_bytes, 4), (truncate, 3), (insert_junk, 3), (splice, 2),
    (duplicate_header, 4), (huge_header, 2), (huge_subject, 3), (odd_address, 5), (odd_date, 5),
    (odd_charset, 5), (odd_transfer_encoding, 4), (nul_bytes, 3), (carriage_returns, 4),
    (lone_surrogates, 4), (encoded_words, 4), (message_links, 4),
    (to_multipart, 5), (deep_nesting, 2), (break_boundary, 3),
    (huge_hunk, 1), (hunk_counts, 3), (odd_paths, 3), (binary_patch, 3), (rename_or_symlink, 3),
    (diff_noise, 3), (many_files, 1), (trailer_flood, 2), (mbox_quoting, 2),
]
_MUTATOR_FUNCS = [m for m, _ in MUTATORS]
_MUTATOR_WEIGHTS = [w for _, w in MUTATORS]


# -- cases ------------------------------------------------------------------------------------


@dataclass
class Case:
    index: int
    mutations: list[str]
    mails: list[bytes] = field(default_factory=list)
    api: list[tuple[str, str]] = field(default_factory=list)  # (function, text) string-level calls

    def mbox(self) -> bytes:
        out = []
        for mail in self.mails:
            quoted = re.sub(rb"(?m)^(>*From )", rb">\1", mail)
            out.append(b"From mboxrd@z Thu Jan  1 00:00:00 1970\n" + quoted + (b"" if quoted.endswith(b"\n") else b"\n") + b"\n")
        return b"".join(out)


_API_FUNCS = ["patch_id", "parse_subject", "parse_address", "decode_header", "find_trailers",
              "split_body", "reply_trailers", "parse_diff"]
_SURROGATES = ["\ud800", "\udc80", "\udfff", "\udbff\udbff", "\x00", "\r", "\u2028", "\ufeff"]


def make_case(seeds: Seeds, seed: int, index: int, scale: float = 1.0) -> Case:
    """Case ``index`` of run ``seed``: always the same bytes for the same pair (and scale)."""
    rng = random.Random(f"{seed}:{index}")
    if rng.random() < 0.05:
        return _api_case(rng, seeds, index)
    start = rng.randrange(len(seeds.mails))
    mails = list(seeds.mails[start : start + rng.choice([1, 1, 2, 3, 5])])
    ids = [header_value(split_mail(m)[0], b"Message-ID") or b"<none@x>" for m in mails]
    ctx = CaseContext(ids, seeds, scale)
    target = rng.randrange(len(mails))
    names = []
    for _ in range(rng.choice([1, 1, 1, 2, 3])):
        mutator = rng.choices(_MUTATOR_FUNCS, _MUTATOR_WEIGHTS)[0]
        mails[target] = mutator(rng, mails[target], ctx)[:MAX_MAIL_BYTES]
        names.append(mutator.__name__)
    return Case(index, names, mails)


def _api_case(rng: random.Random, seeds: Seeds, index: int) -> Case:
    """String-level calls with text no mail decoding produces (stored or API-given text)."""
    mail = rng.choice(seeds.mails)
    text = mail.decode("utf-8", "replace")
    if rng.random() < 0.5:
        text = rng.choice(seeds.diffs).decode("utf-8", "replace")
    chars = list(text)
    for _ in range(rng.randint(1, 20)):
        chars.insert(rng.randrange(len(chars) + 1), rng.choice(_SURROGATES))
    func = rng.choice(_API_FUNCS)
    if func in ("parse_subject", "parse_address", "decode_header"):
        line = "".join(chars)[: rng.choice([100, 10000])]
        return Case(index, [f"api:{func}"], api=[(func, line)])
    return Case(index, [f"api:{func}"], api=[(func, "".join(chars))])
