"""The phrase banks warmup mail is composed from (`warmup_dagster.core.content.compose`).

Plain, everyday office and hobby wording: no links, no addresses, no sales words, nothing a spam
filter could cluster on. Each bank is one `|`-separated block; line breaks inside are not
significant. `{t}` stands for a topic, `{n}` for a first name.
"""


def _fragments(text: str) -> tuple[str, ...]:
    """Split a `|`-separated template block into fragments (line breaks are insignificant)."""
    return tuple(" ".join(part.split()) for part in text.split("|") if part.strip())


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
WHEN = _fragments("""for Friday|this week|next week|today|for Monday|tomorrow|this afternoon
|next month|for Thursday|for Tuesday|this weekend|before Friday|by Friday|this morning
|for Wednesday|later today""")
GREETINGS_NAMED = _fragments("""Hi {n},|Hello {n},|Hey {n},|Good morning {n},
|Good afternoon {n},|Dear {n},|{n},|Hi again {n},|Morning {n},|Hey there {n},|Hello again {n},
|Hi {n}!|Afternoon {n},|Hiya {n},|Evening {n},|Good evening {n},""")
GREETINGS_PLAIN = _fragments("""Hi,|Hello,|Hey,|Hi there,|Hello there,|Good morning,
|Good afternoon,|Hi all,|Hey there,|Morning,|Hi again,|Hello again,|Hi everyone,|Hey all,
|Hi folks,""")
OPENERS = _fragments("""Hope your week is going well.|I hope you had a good weekend.
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
TOPIC_LINES = _fragments("""I wanted to share a few thoughts on the {t}.
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
DETAILS = _fragments("""Most of it is done, but a few details are still open.
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
CLOSINGS = _fragments("""Let me know what you think.|Talk soon.|No rush on this.
|Thanks again for your help.|Looking forward to hearing from you.
|Let me know if you have any questions.|Happy to chat more if that is easier.
|Have a great rest of your week.|Enjoy your weekend.|Just reply whenever you get a chance.
|Let me know if you spot anything.|Let me know if that works for you.|Speak soon.|Hope that helps.
|Let me know if I missed anything.|Thanks for your time.|Have a good one.|Looking forward to it.
|Any thoughts are welcome.|I appreciate it.|Let me know how you would like to proceed.
|Give me a shout if anything comes up.|See you next week.|Happy to help with anything else.
|Thanks for keeping me in the loop.|Let me know what works best.|Enjoy the rest of your day.
|Catch up soon.|Let me know if you want to meet.|Hope to hear from you soon.""")
SIGN_OFFS = _fragments("""Best,|Thanks,|Cheers,|All the best,|Kind regards,|Warmly,
|Talk soon,|Regards,|Many thanks,|Best wishes,|Take care,|Thanks so much,|See you soon,
|Speak soon,|Best regards,|Thank you,|Have a good day,|Thanks again,""")
# Role accounts make poor first names ("Hi Info,").
ROLE_WORDS = frozenset(
    _fragments("info|admin|sales|support|noreply|contact|hello|team|office|mail|help|billing|hr")
)
