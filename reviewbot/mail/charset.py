"""Mail charsets: an allow-list of what real list mail declares, and decoding by it. Pure.

Python accepts any codec name as a charset, and some codecs are hostile on mail input:
``punycode`` decodes in quadratic time (5.5 s for a 298 KB body), ``unicode_escape``,
``raw_unicode_escape`` and ``utf-7`` produce lone surrogates (which UTF-8 output, SQLite
and patch-id then refuse), ``base64``/``zlib``/``rot13`` are not text encodings at all, and
every unknown name asked of ``codecs`` stays in the ``encodings`` module's cache for the
life of the process. So a declared charset is looked up here, never in ``codecs``: the
charsets the cgroups and linux-mm lists use (us-ascii, utf-8, iso-8859-*, windows-125x,
koi8-r/u, gb2312/gbk/gb18030, big5, euc-jp/iso-2022-jp/shift_jis, euc-kr, ...) and their
usual spellings. Anything else is read as UTF-8 with replacement characters and a warning.
"""

from __future__ import annotations

# Spelling (lower case, "_" read as "-") -> Python codec. Every codec here decodes in
# linear time and never yields a lone surrogate.
_ALIASES: dict[str, str] = {
    "us-ascii": "ascii", "ascii": "ascii", "ansi-x3.4-1968": "ascii", "646": "ascii",
    "utf-8": "utf-8", "utf8": "utf-8",
    "latin1": "iso8859-1", "latin-1": "iso8859-1", "l1": "iso8859-1",
    "koi8-r": "koi8-r", "koi8-u": "koi8-u",
    "gb2312": "gb2312", "gbk": "gbk", "x-gbk": "gbk", "cp936": "gbk", "gb18030": "gb18030",
    "big5": "big5", "big5-hkscs": "big5hkscs",
    "euc-jp": "euc_jp", "iso-2022-jp": "iso2022_jp",
    "shift-jis": "shift_jis", "sjis": "shift_jis", "x-sjis": "shift_jis",
    "cp932": "cp932", "windows-31j": "cp932",
    "euc-kr": "euc_kr", "ks-c-5601-1987": "cp949", "cp949": "cp949", "iso-2022-kr": "iso2022_kr",
    "tis-620": "tis-620", "windows-874": "cp874", "cp866": "cp866", "ibm866": "cp866",
}
for _n in (*range(1, 12), *range(13, 17)):  # ISO 8859-1..16 (there is no -12)
    _ALIASES[f"iso-8859-{_n}"] = _ALIASES[f"iso8859-{_n}"] = f"iso8859-{_n}"
for _n in range(1250, 1259):
    _ALIASES[f"windows-{_n}"] = _ALIASES[f"cp{_n}"] = f"cp{_n}"

# Declared, but saying nothing: read as undeclared 8-bit text.
_UNDECLARED = frozenset({"unknown-8bit", "x-unknown"})
MAX_NAME_CHARS = 40  # longer names are not charsets (and are cut in warnings)


def codec_for(charset: str) -> str | None:
    """The Python codec of a declared mail charset, or None when it is not allowed."""
    name = charset.strip().strip('"').strip().lower().replace("_", "-")
    if len(name) > MAX_NAME_CHARS:
        return None
    return _ALIASES.get(name.split("*", 1)[0])  # RFC 2231 "utf-8*en": the language goes


def decode_text(data: bytes, charset: str | None, warnings: list[str] | None = None) -> str:
    """Decode mail text. Never raises; linear in ``len(data)``.

    Args:
        data: the bytes, transfer encoding already undone.
        charset: the declared charset; None or "" when the mail declares none.
        warnings: receives a note when a declared charset is not one mail uses.
    Returns:
        The text: in the declared charset with replacement characters; undeclared 8-bit
        bytes as UTF-8, else Latin-1 (what mailers that declare nothing mostly send);
        an unknown charset as UTF-8 with replacement characters.
    """
    if charset and charset.strip().strip('"').lower() not in _UNDECLARED:
        codec = codec_for(charset)
        if codec is not None:
            return data.decode(codec, errors="replace")
        if warnings is not None:
            warnings.append(f"unknown charset {charset.strip()[:MAX_NAME_CHARS]!r}: read as UTF-8")
        return data.decode("utf-8", errors="replace")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return data.decode("latin-1")
