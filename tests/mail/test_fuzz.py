"""Mutated real-shaped mail: every input gives a result or a clear error, never an exception."""

from __future__ import annotations

from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from reviewbot.config import Settings
from reviewbot.errors import BadInputError
from reviewbot.mail.parse import parse_message
from reviewbot.mail.read import RawMessage, iter_stream
from reviewbot.mail.series import assemble, read_messages

DATA = Path(__file__).resolve().parent.parent / "data" / "mail"
SAMPLES = [p.read_bytes() for p in sorted(DATA.glob("*.eml"))]
MBOX = (DATA / "series-thread.mboxrd").read_bytes()


@st.composite
def mutated(draw: st.DrawFn) -> bytes:
    data = bytearray(draw(st.sampled_from(SAMPLES + [MBOX])))
    for _ in range(draw(st.integers(0, 4))):
        kind = draw(st.sampled_from(["truncate", "bytes", "boundary", "header", "delete"]))
        pos = draw(st.integers(0, max(len(data) - 1, 0)))
        if kind == "truncate":
            del data[pos:]
        elif kind == "bytes":
            data[pos:pos] = draw(st.binary(min_size=1, max_size=40))
        elif kind == "boundary":
            data = bytearray(bytes(data).replace(b"BOUNDARY", draw(st.sampled_from([b"", b"X", b"--"]))))
        elif kind == "header":
            data[0:0] = b"X-Huge: " + b"a" * draw(st.integers(1000, 100_000)) + b"\n"
        else:
            del data[pos : pos + draw(st.integers(1, 200))]
    return bytes(data)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(mutated())
def test_parse_message_result_or_clear_error(raw: bytes) -> None:
    try:
        msg = parse_message(raw, 7, "fuzz.eml")
    except BadInputError as exc:
        assert "fuzz.eml#7" in str(exc)
        return
    assert msg.message_id


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(mutated())
def test_assembly_never_raises(raw: bytes) -> None:
    import io

    stream = io.BytesIO(raw)
    msgs = list(iter_stream(stream, "fuzz"))
    assert all(isinstance(m, RawMessage) for m in msgs)
    settings_ = Settings()
    from reviewbot.mail.ingest import parse_raw

    found = assemble((parse_raw(m, settings_.mail) for m in msgs), settings_.mail)
    assert found.messages == len(msgs)


def test_read_messages_on_random_folder(tmp_path: Path) -> None:
    (tmp_path / "a.eml").write_bytes(b"\x00\xff" * 100)
    (tmp_path / "b.eml").write_bytes(SAMPLES[0])
    items = list(read_messages([tmp_path], Settings().mail))
    assert len(items) == 2
