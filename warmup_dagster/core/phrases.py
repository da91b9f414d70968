"""The phrase banks warmup mail is composed from (`warmup_dagster.core.content`).

Plain, everyday office and hobby wording: no links, no addresses, no sales words, nothing a spam
filter could cluster on. Each block is `|`-separated; line breaks inside are not significant.

A bank that can say something about time maps a condition to its block: `any` holds what
fits every moment, every other key names when its phrases fit the sender's local time
(`warmup_dagster.core.moments` defines them; `a+b` means both). A phrase that mentions a time
of day, a day, a week or a month is never under `any` unless the words stay true at any moment
("next week", "last week", "the morning slot" of a meeting).

Placeholders: `{t}` a topic, `{n}` a first name, `{today}` the sender's local weekday, `{d}`
and `{d2}` weekdays two to five days ahead of it (`{d}` before `{d2}`), `{w}` a "when"
phrase fitting the sender's local time ("later today", "by Thursday").
"""


def _fragments(text: str) -> tuple[str, ...]:
    """Split a `|`-separated template block into fragments (line breaks are insignificant)."""
    return tuple(" ".join(part.split()) for part in text.split("|") if part.strip())


def _bank(blocks: dict[str, str]) -> dict[str, tuple[str, ...]]:
    """A bank: condition -> its fragments."""
    return {when: _fragments(text) for when, text in blocks.items()}


# Every topic is two words and every subject pattern adds at most four, plus an optional
# two-word time suffix: subjects stay within 2-8 words. No topic ends in the word a pattern
# puts right after it (no "budget update update").
TOPICS = _fragments("""team lunch|book club|hiking trip|budget proposal|conference talk
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
SUBJECTS = _fragments("""{t}|{t} update|{t} plans|question about the {t}|about the {t}
|notes on the {t}|thoughts on the {t}|following up on {t}|checking in on {t}|update on the {t}
|ideas for the {t}|the {t}|{t} follow-up|{t} details|{t} next steps|a note on the {t}|{t} timing
|our {t}|{t} question|help with the {t}|{t} thoughts|more on the {t}|{t} recap|the {t} again
|quick {t} question|{t} changes|{t} ideas|{t} status|{t} check-in|on the {t}|{t}, quick one
|{t} for review|where are we on {t}|next steps for {t}|{t} wrap-up|{t} reminder|{t} logistics
|before the {t}|after the {t}|{t} options|a thought on the {t}|your {t}|{t} catch-up
|one thing about {t}""")
# A subject's optional suffix, and `{w}` in the reply banks.
WHEN = _bank(
    {
        "any": "next week|next month|for {d}|by {d}|before {d}|on {d}",
        "daytime": "today|tonight",
        "before_three": "later today",
        "awake": "tomorrow",
        "morning": "this afternoon",
        "early": "this morning",
        "early_week": "this week",
        "workweek": "this weekend",
        "early_month": "this month",
    }
)
# `{w}` in a reply ("I will send you my notes {w}"): the same, less "for Thursday".
REPLY_WHEN = {
    when: tuple(t for t in texts if not t.startswith("for ")) for when, texts in WHEN.items()
}
GREETINGS_NAMED = _bank(
    {
        "any": """Hi {n},|Hello {n},|Hey {n},|Dear {n},|{n},|Hi again {n},|Hey there {n},
        |Hello again {n},|Hi {n}!|Hiya {n},""",
        "morning": "Good morning {n},|Morning {n},",
        "afternoon": "Good afternoon {n},|Afternoon {n},",
        "evening": "Good evening {n},|Evening {n},",
        "friday+awake": "Happy Friday {n},",
    }
)
GREETINGS_PLAIN = _bank(
    {
        "any": """Hi,|Hello,|Hey,|Hi there,|Hello there,|Hi all,|Hey there,|Hi again,
        |Hello again,|Hi everyone,|Hey all,|Hi folks,""",
        "morning": "Good morning,|Morning,",
        "afternoon": "Good afternoon,",
        "evening": "Good evening,",
    }
)
OPENERS = _bank(
    {
        "any": """Hope you are doing well.|Thanks for getting back to me so quickly.
        |It was good to catch up the other day.|Hope things are not too busy on your end.
        |Thanks again for your help last week.|Sorry for the slow reply.|Hope the trip went well.
        |Good to hear from you.|Hope you had a nice break.|Hope all is well with you.
        |I hope the move went smoothly.|Thanks for your patience with this.
        |It was nice seeing you at the meeting.|Thanks for the reminder.
        |Hope the new role is treating you well.|Sorry this took a while.
        |Thanks for thinking of me on this.|Hope you are keeping well.
        |Just back from a few days off.|Hope the weather is better on your side.
        |I know things are hectic right now.""",
        "midweek": "Hope your week is going well.|Good seeing you yesterday.",
        "after_weekend": "I hope you had a good weekend.|Hope you enjoyed the long weekend.",
        "morning+workweek": "I hope your {today} is off to a good start.",
        "daytime": "Hope you are having a good {today}.",
        "morning": "Hope your morning is going well.",
        "afternoon": "Hope your afternoon is going well.",
        "later": "Thanks for the quick chat earlier.|Thanks for the kind note earlier.",
        "late_week": "It has been a busy week here.",
        "week_winding_down": "I hope the week is winding down nicely.",
        "weekend": "Hope your weekend is going well.|Sorry to write on a weekend.",
        "friday+awake": "Happy Friday.",
    }
)
TOPIC_LINES = _bank(
    {
        "any": """I wanted to share a few thoughts on the {t}.
        |Do you have a few minutes to look at the {t}?
        |I have been thinking about the {t} a bit more.
        |Quick note about the {t}.|I made some progress on the {t} yesterday.
        |Could we find a time to talk through the {t}?|Just checking where we ended up with the {t}.
        |I put together a rough outline for the {t}.|A couple of people asked me about the {t}.
        |I finally had a chance to go through the {t}.
        |Let me know if you still want to help with the {t}.
        |I think we are close on the {t}.|There are a few open questions on the {t}.
        |Would you mind taking another look at the {t}?
        |I wanted to loop back on the {t}.|Happy to take the lead on the {t} if that helps.
        |I jotted down some ideas for the {t}.|Have you had any time to think about the {t}?
        |I am a little behind on the {t} but catching up.
        |The plan for the {t} looks good to me so far.
        |I moved a few things around for the {t}.|I would love your input on the {t}.
        |We should probably settle the details of the {t} soon.
        |I heard back from everyone about the {t}.
        |Here is where things stand with the {t}.|I am still sorting out a few pieces of the {t}.
        |Thanks for your notes on the {t}.|I think the {t} could use one more pass.
        |Nothing major on the {t}, just a small update.|Are you still able to help with the {t}?
        |I added a couple of thoughts about the {t}.""",
        "later": """I talked to a few people about the {t} today.
        |I had another look at the {t} this morning.""",
    }
)
DETAILS = _bank(
    {
        "any": """Most of it is done, but a few details are still open.
        |Nothing is final yet, so suggestions are welcome.|I kept it short so it is easy to read.
        |{d} or {d2} would both work for me.|I can bring my notes when we meet.
        |It should not take more than half an hour.|I tried to keep the list as simple as possible.
        |Happy to walk you through it on a call.|A few dates still need to be confirmed.
        |I left some comments where I was not sure.|The second half still needs some work.
        |I think we can keep the same format as last time.
        |A colleague had a couple of good suggestions.
        |The timing seems a bit tight, but doable.|We can always adjust it later.
        |I would rather keep it small this time.|Let me know if anything looks off.
        |I have a few more ideas if we need them.|The morning slot seems to work for most people.
        |We might need one more person to help.|I will send the final version once it is ready.
        |It turned out better than I expected.|There is no rush, so take your time.
        |I can also share the earlier version if useful.|Some of the numbers still need checking.
        |I think the shorter option is the better one.|Everyone seemed happy with the first version.
        |We could also push it back a week.|I am flexible on the details.
        |The weather might change things a bit.|I already booked a room for it.
        |We could go over it on {d} if that suits you.""",
        "daytime": "I will be around for the rest of the day if you want to talk.",
    }
)
CLOSINGS = _bank(
    {
        "any": """Let me know what you think.|Talk soon.|No rush on this.
        |Thanks again for your help.|Looking forward to hearing from you.
        |Let me know if you have any questions.|Happy to chat more if that is easier.
        |Just reply whenever you get a chance.
        |Let me know if you spot anything.|Let me know if that works for you.|Speak soon.
        |Hope that helps.|Let me know if I missed anything.|Thanks for your time.|Have a good one.
        |Looking forward to it.|Any thoughts are welcome.|I appreciate it.
        |Let me know how you would like to proceed.|Give me a shout if anything comes up.
        |Happy to help with anything else.|Thanks for keeping me in the loop.
        |Let me know what works best.|Catch up soon.|Let me know if you want to meet.
        |Hope to hear from you soon.""",
        "rest_of_week": "Have a great rest of your week.",
        "weekend_ahead": "Enjoy your weekend.|Have a good weekend.",
        "see_next_week": "See you next week.",
        "daytime": "Enjoy the rest of your day.",
        "towards_evening": "Have a good evening.|Enjoy your evening.",
        "week_start": "Have a good week.",
    }
)
SIGN_OFFS = _bank(
    {
        "any": """Best,|Thanks,|Cheers,|All the best,|Kind regards,|Warmly,|Talk soon,|Regards,
        |Many thanks,|Best wishes,|Take care,|Thanks so much,|See you soon,|Speak soon,
        |Best regards,|Thank you,|Thanks again,""",
        "daytime": "Have a good day,",
        "towards_evening": "Have a good evening,",
    }
)

# Replies: they thank, answer what the original asked, and say what happens next.
REPLY_OPENERS = _bank(
    {
        "any": """Thanks for the note about the {t}.|Thanks for the update on the {t}.
        |Good to hear about the {t}.|Thanks for sending this over.|Thanks for the message.
        |Thanks for reaching out about the {t}.|Sorry for the slow reply on the {t}.
        |Thanks for getting in touch.|Thanks for keeping me posted.|Good to hear from you.
        |Thanks for thinking of me for the {t}.|Thanks, this is helpful.""",
        "later": "Just catching up on messages now.",
        "weekend": "Catching up on a few things over the weekend.",
    }
)
# Each reply says this at least once: it answers the topic the original was about.
REPLY_TOPIC_LINES = _fragments("""The {t} sounds good to me.
|I think we are in good shape on the {t}.|Happy to help with the {t}.
|I had a quick look at the {t} and it looks fine.
|Count me in for the {t}.|I like where the {t} is going.|The {t} plan makes sense to me.
|No concerns from me on the {t}.|I am glad the {t} is moving along.
|I was hoping to hear more about the {t}.|Good to see progress on the {t}.
|I agree the {t} needs a bit more thought.""")
# What an original asked, found by these cues in its text, and how a reply answers it.
ASKS = {
    "look": (
        _fragments("""look at|another look|go through|one more pass|for review|looks off
        |spot anything|missed anything"""),
        _fragments("""I can take a closer look {w}.|I will go through it properly {w}.
        |I had a first read and it looks good so far.|I will send you my notes {w}.
        |Nothing looked off to me on a first read."""),
    ),
    "meet": (
        _fragments("""find a time|talk through|on a call|want to meet|when we meet|chat more
        |walk you through|go over it"""),
        _fragments("""A quick call {w} works for me.|Happy to talk it through {w}.
        |Let us find a slot {w}.|I am free for a chat {w} if that suits you."""),
    ),
    "help": (
        _fragments("""help with|able to help|want to help|one more person|take the lead"""),
        _fragments("""Yes, I can still help.|Happy to lend a hand.|Count me in.
        |I can help with part of it {w}."""),
    ),
    "opinion": (
        _fragments("""what you think|your input|thoughts|suggestions are welcome|open questions
        |ideas for|think about"""),
        _fragments("""It looks good to me overall.|I only have a couple of small comments.
        |I like the shorter version better.|I would keep it simple, as you suggest.
        |My only thought is to leave a little extra time."""),
    ),
    "questions": (
        _fragments("""any questions|let me know if that works|what works best|proceed"""),
        _fragments("""No questions from me for now.|That works for me.
        |Whatever works best for you is fine with me."""),
    ),
}
# The answer when the original named two days ("Tuesday or Wednesday would both work").
REPLY_DAY = _fragments("""{d} works for me.|{d} is better for me.|Let us say {d}.""")
REPLY_TOMORROW = _fragments("""Tomorrow works for me.|Tomorrow is better for me.""")
REPLY_NEXT = _bank(
    {
        "any": """I will keep you posted.|I will get back to you {w}.
        |Let me know if anything changes.|I will follow up {w}.|Happy to help with anything else.
        |Thanks again for putting it together.|I will share it with the others {w}.""",
    }
)
REPLY_CLOSINGS = _bank(
    {
        "any": """Talk soon.|Speak soon.|Thanks again.|Let me know if you need anything else.
        |Catch up soon.|Have a good one.|Thanks for the update.""",
        "rest_of_week": "Have a great rest of your week.",
        "weekend_ahead": "Have a good weekend.",
        "daytime": "Enjoy the rest of your day.",
        "towards_evening": "Have a good evening.",
    }
)
# Role accounts make poor first names ("Hi Info,").
ROLE_WORDS = frozenset(
    _fragments("info|admin|sales|support|noreply|contact|hello|team|office|mail|help|billing|hr")
)
