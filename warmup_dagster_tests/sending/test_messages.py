"""The email built from an `Outgoing`: the planned headers, a UTF-8 plain-text body."""

from datetime import UTC, datetime

import pytest

from warmup_dagster.sending.messages import Outgoing, build_message

DATE = datetime(2026, 3, 2, 6, 0, tzinfo=UTC)


def outgoing(job_id: int, **fields: str) -> Outgoing:
    values = {
        "sender": "sender@warmup.test",
        "recipient": "ok@inbox.test",
        "message_id": f"<job{job_id}.a1b2c3@warmup.test>",
        "subject": f"Quarterly notes {job_id}",
        "body": f"Hello number {job_id},\nthanks for the notes. Grüße\n",
    }
    return Outgoing(job_id=job_id, **{**values, **fields})


def test_build_message_has_the_planned_headers_and_nothing_else() -> None:
    message = outgoing(1, in_reply_to="<a@warmup.test>", references="<z@warmup.test>")

    built = build_message(message, DATE)

    assert sorted(built.keys()) == sorted(
        [
            "From",
            "To",
            "Subject",
            "Date",
            "Message-ID",
            "In-Reply-To",
            "References",
            "Content-Type",
            "Content-Transfer-Encoding",
            "MIME-Version",
        ]
    )
    assert built["Date"] == "Mon, 02 Mar 2026 06:00:00 +0000"
    assert built["Message-ID"] == message.message_id
    assert built.get_content_type() == "text/plain"
    assert built.get_content_charset() == "utf-8"
    assert built.get_content() == message.body
    assert "In-Reply-To" not in build_message(outgoing(2), DATE)


def test_build_message_refuses_a_naive_date_and_a_header_with_a_line_break() -> None:
    with pytest.raises(ValueError, match="timezone"):
        build_message(outgoing(1), datetime(2026, 3, 2, 6, 0))
    with pytest.raises(ValueError):
        build_message(outgoing(1, subject="Notes\nBcc: everyone@example.com"), DATE)
