"""Warmup email content: varied plain-text subjects and bodies, and self-identifying Message-IDs.

Pure functions: all randomness comes from the caller's `random.Random`, so a seeded plan always
produces the same messages. Warmup mail is recognised by its Message-ID alone:
`<{nonce}.{mac}@{domain}>` where `mac` is a truncated HMAC of nonce and domain. Every id looks
like an ordinary random id, so there is no constant header or subject marker a spam filter
could cluster on, and only holders of the key can tell the mail is ours.
"""

from __future__ import annotations

import functools
import hashlib
import hmac
import random
import re
import unicodedata
from dataclasses import dataclass

TOKEN_LABEL = b"warmup-dagster message token"
TOKEN_LENGTH = 10


def _fragments(text: str) -> tuple[str, ...]:
    """Split a `|`-separated template block into fragments (line breaks are insignificant)."""
    return tuple(" ".join(part.split()) for part in text.split("|") if part.strip())


# Every topic is two words and every subject pattern adds at most four, plus an optional
# two-word time suffix: subjects stay within 2-8 words. No topic ends in a pattern word.
_TOPICS = _fragments("""team lunch|book club|hiking trip|budget proposal|conference talk
|quarterly review|office move|seating chart|workshop agenda|reading list|volunteer day|client call
|product demo|onboarding checklist|recipe swap|running group|training program|vendor shortlist
|holiday party|design review|podcast episode|spring fundraiser|garden project|neighborhood meeting
|photo album|summer trip|board meeting|survey results|newsletter draft|kitchen renovation
|team offsite|research summary|project timeline|soccer practice|birthday dinner|study group
|movie night|camping weekend|contract renewal|inventory count|slide deck|hiring round
|supplier meeting|customer interviews|community event|annual report|launch checklist|bike ride
|charity run|planning session|spring catalog|team meeting|print order|team retro|picnic menu
|website refresh|grant application|art fair|cooking class|staff handbook|office plants
|lunch order|quiz night|music lesson""")
_SUBJECTS = _fragments("""{t}|{t} update|{t} plans|question about the {t}|about the {t}
|notes on the {t}|thoughts on the {t}|following up on {t}|checking in on {t}|update on the {t}
|ideas for the {t}|the {t}|{t} follow-up|{t} details|{t} next steps|a note on the {t}|{t} timing
|our {t}|{t} question|help with the {t}|{t} thoughts|more on the {t}|{t} recap|the {t} again
|quick {t} question|{t} changes|{t} ideas|{t} status|{t} check-in|on the {t}|{t}, quick one
|{t} for review|where are we on {t}|next steps for {t}|{t} wrap-up|{t} reminder|{t} logistics
|before the {t}|after the {t}|{t} options|a thought on the {t}|your {t}|{t} catch-up
|one thing about {t}""")
_WHEN = _fragments("""for Friday|this week|next week|today|for Monday|tomorrow|this afternoon
|next month|for Thursday|for Tuesday|this weekend|before Friday|by Friday|this morning
|for Wednesday|later today""")
_GREETINGS_NAMED = _fragments("""Hi {n},|Hello {n},|Hey {n},|Good morning {n},
|Good afternoon {n},|Dear {n},|{n},|Hi again {n},|Morning {n},|Hey there {n},|Hello again {n},
|Hi {n}!|Afternoon {n},|Hiya {n},|Evening {n},|Good evening {n},""")
_GREETINGS_PLAIN = _fragments("""Hi,|Hello,|Hey,|Hi there,|Hello there,|Good morning,
|Good afternoon,|Hi all,|Hey there,|Morning,|Hi again,|Hello again,|Hi everyone,|Hey all,
|Hi folks,""")
_OPENERS = _fragments("""Hope your week is going well.|I hope you had a good weekend.
|Hope you are doing well.|Thanks for getting back to me so quickly.
|It was good to catch up the other day.|Hope things are not too busy on your end.
|Thanks again for your help last week.|Sorry for the slow reply.|Hope the trip went well.
|I hope your Monday is off to a good start.|Good to hear from you.|Hope you had a nice break.
|Thanks for the quick chat earlier.|Hope all is well with you.|It has been a busy week here.
|I hope the move went smoothly.|Thanks for your patience with this.
|Hope you enjoyed the long weekend.|It was nice seeing you at the meeting.|Thanks for the reminder.
|Hope the new role is treating you well.|Sorry this took a while.
|I hope the week is winding down nicely.|Good seeing you yesterday.
|Thanks for thinking of me on this.|Hope you are keeping well.|Just back from a few days off.
|Hope the weather is better on your side.|I know things are hectic right now.
|Thanks for the kind note earlier.""")
_TOPIC_LINES = _fragments("""I wanted to share a few thoughts on the {t}.
|Do you have a few minutes to look at the {t}?|I have been thinking about the {t} a bit more.
|Quick note about the {t}.|I made some progress on the {t} yesterday.
|Could we find a time to talk through the {t}?|Just checking where we ended up with the {t}.
|I put together a rough outline for the {t}.|A couple of people asked me about the {t}.
|I finally had a chance to go through the {t}.|Let me know if you still want to help with the {t}.
|I think we are close on the {t}.|There are a few open questions on the {t}.
|Would you mind taking another look at the {t}?|I talked to a few people about the {t} today.
|I wanted to loop back on the {t}.|Happy to take the lead on the {t} if that helps.
|I jotted down some ideas for the {t}.|Have you had any time to think about the {t}?
|I am a little behind on the {t} but catching up.|The plan for the {t} looks good to me so far.
|I moved a few things around for the {t}.|I would love your input on the {t}.
|We should probably settle the details of the {t} soon.|I heard back from everyone about the {t}.
|Here is where things stand with the {t}.|I am still sorting out a few pieces of the {t}.
|Thanks for your notes on the {t}.|I think the {t} could use one more pass.
|Nothing major on the {t}, just a small update.|Are you still able to help with the {t}?
|I added a couple of thoughts about the {t}.""")
_DETAILS = _fragments("""Most of it is done, but a few details are still open.
|Nothing is final yet, so suggestions are welcome.|I kept it short so it is easy to read.
|Tuesday or Wednesday would both work for me.|I can bring my notes when we meet.
|It should not take more than half an hour.|I tried to keep the list as simple as possible.
|Happy to walk you through it on a call.|A few dates still need to be confirmed.
|I left some comments where I was not sure.|The second half still needs some work.
|I think we can keep the same format as last time.|A colleague had a couple of good suggestions.
|The timing seems a bit tight, but doable.|We can always adjust it later.
|I would rather keep it small this time.|Let me know if anything looks off.
|I have a few more ideas if we need them.|The morning slot seems to work for most people.
|We might need one more person to help.|I will send the final version once it is ready.
|It turned out better than I expected.|There is no rush, so take your time.
|I can also share the earlier version if useful.|Some of the numbers still need checking.
|I think the shorter option is the better one.|Everyone seemed happy with the first version.
|We could also push it back a week.|I am flexible on the details.
|The weather might change things a bit.|I already booked a room for it.""")
_CLOSINGS = _fragments("""Let me know what you think.|Talk soon.|No rush on this.
|Thanks again for your help.|Looking forward to hearing from you.
|Let me know if you have any questions.|Happy to chat more if that is easier.
|Have a great rest of your week.|Enjoy your weekend.|Just reply whenever you get a chance.
|Let me know if you spot anything.|Let me know if that works for you.|Speak soon.|Hope that helps.
|Let me know if I missed anything.|Thanks for your time.|Have a good one.|Looking forward to it.
|Any thoughts are welcome.|I appreciate it.|Let me know how you would like to proceed.
|Give me a shout if anything comes up.|See you next week.|Happy to help with anything else.
|Thanks for keeping me in the loop.|Let me know what works best.|Enjoy the rest of your day.
|Catch up soon.|Let me know if you want to meet.|Hope to hear from you soon.""")
_SIGN_OFFS = _fragments("""Best,|Thanks,|Cheers,|All the best,|Kind regards,|Warmly,
|Talk soon,|Regards,|Many thanks,|Best wishes,|Take care,|Thanks so much,|See you soon,
|Speak soon,|Best regards,|Thank you,|Have a good day,|Thanks again,""")
_REPLY_LINES = _fragments("""Thanks for the note.|Sounds good to me.|That works for me.
|I had a look and it all seems fine.|Good idea, let's do that.|Thanks, this is really helpful.
|Makes sense to me.|I agree with most of this.|Got it, thanks for the update.
|Happy to go with that.|I will take a closer look tonight.|Let's talk it through tomorrow.
|Perfect, thanks for sorting it out.|I can do Thursday if that helps.|Glad it is coming together.
|I have one small question, but it can wait.|Count me in.|Thanks for pulling this together.
|That timing should be fine.|I will pass it along to the others.|Nice work on this.
|No objections from me.|I was thinking the same thing.|Let me check and get back to you.
|Works for me, thanks.|Looks great.|Appreciate you sending this over.""")
# Role accounts make poor first names ("Hi Info,").
_ROLE_WORDS = frozenset(
    _fragments("info|admin|sales|support|noreply|contact|hello|team|office|mail|help|billing|hr")
)
_RE_PREFIX = re.compile(r"^\s*(?:re\s*:\s*)+", re.IGNORECASE)
# Quoted lines never carry addresses, links or markup into our bodies.
_UNQUOTABLE = re.compile(r"@|https?:|www\.|<|src=", re.IGNORECASE)


@dataclass(frozen=True)
class Content:
    """One warmup message's generated content.

    Attributes:
        subject: Short plain subject line.
        body: Plain-text body (printable ASCII and newlines only).
        message_id: Message-ID header value with angle brackets, on the sender's domain.
        token: The Message-ID's MAC part, stored in the database for audit.
    """

    subject: str
    body: str
    message_id: str
    token: str


def token_key(secret: str) -> bytes:
    """Derive the token HMAC key from the deployment secret (`WARMUP_SECRET_KEY`).

    Args:
        secret: The deployment secret.

    Returns:
        HMAC-SHA256(secret, TOKEN_LABEL), so the token key differs from other derived keys.
    """
    if not secret:
        raise ValueError("the secret must not be empty")
    return hmac.new(secret.encode(), TOKEN_LABEL, hashlib.sha256).digest()


def _mac(key: bytes, nonce: str, domain: str) -> str:
    return hmac.digest(key, f"{nonce}|{domain.lower()}".encode(), "sha256").hex()[:TOKEN_LENGTH]


def _domain_of(email: str) -> str:
    domain = email.strip().rpartition("@")[2].strip().strip(">").lower()
    if "@" not in email or not domain:
        raise ValueError(f"not an email address: {email!r}")
    return domain


def new_message_id(rng: random.Random, key: bytes, domain: str) -> tuple[str, str]:
    """Create a random-looking Message-ID on `domain` that carries our token.

    Args:
        rng: Source of randomness for the nonce.
        key: Token key from `token_key`.
        domain: The sending mailbox's domain.

    Returns:
        `(message_id, token)`: `"<{nonce}.{token}@{domain}>"` and the 10-character MAC.
    """
    return _message_id(rng.getrandbits(88), key, domain)


def job_message_id(key: bytes, job_id: int, seed: int, domain: str) -> tuple[str, str]:
    """The Message-ID of a planned job, derived from the job instead of drawn.

    Planning stores no ids (a million a day); the sender derives one at each attempt, the same
    every time, so a retry repeats it and the receiving side can thread on it. The nonce comes
    from an HMAC of the job's id and random content seed: unique per job, and unguessable
    without the key, like a drawn one.

    Args:
        key: Token key from `token_key`.
        job_id: The job's id.
        seed: The job's `content_seed`.
        domain: The sending mailbox's domain.

    Returns:
        `(message_id, token)` as from `new_message_id`.
    """
    digest = hmac.digest(key, f"message-id|{job_id}|{seed}".encode(), "sha256")
    return _message_id(int.from_bytes(digest[:11], "big"), key, domain)


def _message_id(bits: int, key: bytes, domain: str) -> tuple[str, str]:
    """The id made from 88 random bits: the low 16 pick a length of 14-18 hex digits (so ids
    don't all have one length), the high 72 the digits."""
    domain = domain.strip().lower()
    digits = 14 + ((bits & 0xFFFF) * 5 >> 16)
    nonce = f"{bits >> (88 - 4 * digits):0{digits}x}"
    token = _mac(key, nonce, domain)
    return f"<{nonce}.{token}@{domain}>", token


def is_warmup_message_id(key: bytes, message_id: str) -> bool:
    """Tell whether a Message-ID was made by `new_message_id` or `job_message_id` with this key.

    Args:
        key: Token key from `token_key`.
        message_id: A Message-ID header value; surrounding whitespace and missing angle
            brackets are tolerated, and the domain is compared case-insensitively.

    Returns:
        True iff the id's MAC verifies for its nonce and domain.
    """
    value = message_id.strip().removeprefix("<").removesuffix(">").strip()
    local, at, domain = value.rpartition("@")
    nonce, dot, mac = local.rpartition(".")
    if not (at and dot and nonce and domain) or len(mac) != TOKEN_LENGTH or not value.isascii():
        return False
    return hmac.compare_digest(mac.lower(), _mac(key, nonce, domain))


_NOT_PRINTABLE = re.compile(r"[^\n -~]")


def _ascii(text: str) -> str:
    """Fold text to printable ASCII plus newline (accents dropped, other characters spaced)."""
    folded = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode("ascii")
    folded = folded.replace("\r\n", "\n").replace("\r", "\n")
    return _NOT_PRINTABLE.sub(" ", folded)


@functools.lru_cache(maxsize=65_536)
def _first_name(email: str) -> str | None:
    """A display first name from an address's local part ('alice.smith42' -> 'Alice')."""
    local = email.strip().rpartition("@")[0].split("+")[0]
    first = re.split(r"[._\-]+", _ascii(local).strip())[0]
    letters = re.sub(r"[^A-Za-z]", "", first)
    if len(letters) < 2 or letters.lower() in _ROLE_WORDS:
        return None
    return letters.capitalize()


def _sender_name(email: str, given: str | None) -> str:
    """The sign-off name: given, else derived, else a neutral 'The Acme team'."""
    name = " ".join(re.sub(r"[@<>]", " ", _ascii(given or "")).split())
    if name:
        return name
    derived = _first_name(email)
    if derived:
        return derived
    label = re.sub(r"[^A-Za-z]", "", _domain_of(email).split(".")[0])
    return f"The {label.capitalize()} team" if len(label) >= 2 else "The team"


def _greeting(rng: random.Random, name: str | None) -> str:
    if name and rng.random() < 0.6:
        return rng.choice(_GREETINGS_NAMED).format(n=name)
    return rng.choice(_GREETINGS_PLAIN)


def _subject(rng: random.Random, topic: str) -> str:
    subject = rng.choice(_SUBJECTS).format(t=topic)
    if rng.random() < 0.5:
        subject = f"{subject} {rng.choice(_WHEN)}"
    # Some people never capitalise their subjects.
    return subject if rng.random() < 0.15 else subject[0].upper() + subject[1:]


def _paragraphs(rng: random.Random, topic: str) -> list[str]:
    """2-6 sentences in 1-3 paragraphs: opener and topic, details, closing."""
    lead = [rng.choice(_OPENERS)] if rng.random() < 0.7 else []
    lead += [s.format(t=topic) for s in rng.sample(_TOPIC_LINES, 2 if rng.random() < 0.25 else 1)]
    closing = [rng.choice(_CLOSINGS)] if rng.random() < 0.8 else []
    n_details = rng.choice((0, 1, 1, 2))
    n_details = max(n_details, 2 - len(lead) - len(closing))
    groups = [lead, rng.sample(_DETAILS, n_details), closing]
    groups = [g for g in groups if g]
    # Merge neighbouring groups now and then so paragraph counts vary too.
    for i in range(len(groups) - 1, 0, -1):
        if rng.random() < 0.35:
            groups[i - 1] = groups[i - 1] + groups.pop(i)
    return [" ".join(g) for g in groups]


def compose(
    seed: int, sender_email: str, recipient_email: str, sender_name: str | None = None
) -> tuple[str, str]:
    """The subject and plain-text body of a new warmup message, determined by `seed`.

    Planning stores only the seed (and the Message-ID); the sender composes the text when it
    sends, so a retry sends the same words and planning a million jobs stays cheap.

    Args:
        seed: The job's content seed.
        sender_email: The sending mailbox; its name signs the message.
        recipient_email: The receiving mailbox; its first name is used in some greetings.
        sender_name: Sign-off name; by default a first name derived from the sender's local
            part, or a neutral team name for role accounts.

    Returns:
        `(subject, body)`.
    """
    rng = random.Random(seed)
    topic = rng.choice(_TOPICS)
    subject = _subject(rng, topic)
    parts = [_greeting(rng, _first_name(recipient_email)), *_paragraphs(rng, topic)]
    parts.append(f"{rng.choice(_SIGN_OFFS)}\n{_sender_name(sender_email, sender_name)}")
    return _ascii(subject), _ascii("\n\n".join(parts))


def generate_content(
    rng: random.Random,
    key: bytes,
    sender_email: str,
    recipient_email: str,
    sender_name: str | None = None,
) -> Content:
    """Generate a new warmup message: subject, plain-text body and a tokened Message-ID.

    Args:
        rng: Source of all randomness (seed it for reproducible output).
        key: Token key from `token_key`.
        sender_email: The sending mailbox; its domain hosts the Message-ID.
        recipient_email: The receiving mailbox.
        sender_name: Sign-off name (see `compose`).

    Returns:
        The message content.
    """
    subject, body = compose(rng.getrandbits(63), sender_email, recipient_email, sender_name)
    message_id, token = new_message_id(rng, key, _domain_of(sender_email))
    return Content(subject, body, message_id, token)


def reply_subject(original_subject: str) -> str:
    """'Re: ' plus the original subject, without stacking 'Re: Re:'."""
    rest = _RE_PREFIX.sub("", " ".join(_ascii(original_subject).split()))
    return f"Re: {rest}" if rest else "Re: your note"


def threading_headers(
    original_message_id: str, original_references: str | None = None
) -> dict[str, str]:
    """In-Reply-To and References headers for a reply to `original_message_id`."""
    references = " ".join([*(original_references or "").split(), original_message_id.strip()])
    return {"In-Reply-To": original_message_id.strip(), "References": references}


def _quote(body: str, n_lines: int) -> str:
    """The original's first `n_lines` non-blank lines, '> '-quoted, blank lines kept."""
    quoted: list[str] = []
    for line in _ascii(body).strip().splitlines():
        if sum(1 for q in quoted if q != ">") == n_lines:
            break
        if not _UNQUOTABLE.search(line):
            quoted.append(f"> {line.strip()[:300]}" if line.strip() else ">")
    while quoted and quoted[-1] == ">":
        quoted.pop()
    return "\n".join(quoted)


def generate_reply(
    rng: random.Random,
    key: bytes,
    replier_email: str,
    original_subject: str,
    original_body: str,
    original_sender_email: str,
) -> Content:
    """Generate a reply: 'Re:' subject, a few natural lines, optionally quoting the original.

    Args:
        rng: Source of all randomness.
        key: Token key from `token_key`.
        replier_email: The replying mailbox; its domain hosts the new Message-ID.
        original_subject: Subject of the message replied to.
        original_body: Body of the message replied to; its first lines may be quoted.
        original_sender_email: Who sent the original (named in the greeting and quote line).

    Returns:
        The reply content, with its own Message-ID and token. Threading headers come from
        `threading_headers`.
    """
    domain = _domain_of(replier_email)
    their_name = _first_name(original_sender_email)
    lines = rng.sample(_REPLY_LINES, rng.randint(1, 3))
    if rng.random() < 0.4:
        lines.append(rng.choice(_CLOSINGS))
    parts = [" ".join(lines), f"{rng.choice(_SIGN_OFFS)}\n{_sender_name(replier_email, None)}"]
    if rng.random() < 0.5:
        parts.insert(0, _greeting(rng, their_name))
    quoted = _quote(original_body, rng.randint(2, 4))
    if quoted and rng.random() < 0.6:
        header = f"{their_name} wrote:" if their_name and rng.random() < 0.7 else "You wrote:"
        parts.append(f"{header}\n{quoted}")
    message_id, token = new_message_id(rng, key, domain)
    return Content(reply_subject(original_subject), _ascii("\n\n".join(parts)), message_id, token)
