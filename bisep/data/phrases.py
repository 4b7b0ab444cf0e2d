"""Caption -> single-source phrases: "A man speaks while birds chirp in the background" -> ["a man speaks",
"birds chirp"].

The method prompts the separator with one phrase per sound event of a natural mixture, so the parser splits a
caption where a connective joins two sources, and, as AudioCaps-style parsers do, where one subject does two
things ("a dog barks and growls" -> "a dog barks", "a dog growls"). It runs offline without a tagger or model:
a lexicon of sound verbs and word-shape rules stand in for parts of speech. The heuristics, each covered by a
test:

- Connectives. Noun connectives ("followed by", "along with", "together with", "as well as", "accompanied by",
  "interrupted by") always start a new source. Clause connectives ("and", "then", commas, "while", "whilst",
  "as", "before", "after", "after that", "until", "when") start one when a subject follows. Weak connectives
  ("with", "over", "during", "amid") start one unless a bare noun of manner, tool or medium follows ("with a
  low voice", "over a loudspeaker") or the "with" sits inside the subject ("a man with a deep voice speaks").
- Subject ellipsis. After a clause connective, a conjunct that opens with a finite verb or auxiliary
  ("barks", "is slammed", "revved") or a pronoun ("as it passes by") continues the previous source, unless a
  third-person form follows a plural verb ("people clap and cheers": a noun). A bare -ing conjunct continues
  it only after "and"/"then"/a comma and an -ing predicate ("people talking and laughing", "rustling and
  crinkling of a bag") and names no object of its own; otherwise it is a sound of its own ("a man speaks
  while typing" -> "typing": the keyboard, not the voice, makes it; "wind blowing and knocking on a door").
- Shared-subject verbs. A verb conjunct continued after "and", "then" or a comma becomes a phrase of its own
  with the previous clause's subject ("a man speaks loudly and laughs" -> "a man speaks loudly", "a man
  laughs"; "a dog barks, growls and whines" -> three), with its auxiliaries when the verb forms match
  ("children are playing and shouting" -> "children are shouting"; "is started and then revved" -> "is
  revved"). A pronoun clause ("as it passes by") and a verb without a subject ("rustling and crinkling of a
  bag") stay attached. Adjectives or adverbs alone after "and" describe the same event ("wind blows hard and
  strong", "a loud and sharp bang").
- Shared subjects. Persons joined by "and" before one verb stay one phrase ("a man and a woman talk(ing)");
  other nouns joined by "and" are separate sources ("speech and laughter", "a cello melody and a drum beat").
- Repeats. A repeated verb ("and then barks again") is dropped, "again"/"once more" are removed, and phrases
  equal up to a leading article are one source ("the woman speaks" after "a woman speaks"); "another man
  speaks" is kept, since a second voice is a second source.
- Modifiers. Place and distance ("in the background", "in the distance", "nearby", "far away", "distant",
  "faint(ly)") describe where the source sits in this mixture, not the sound, so they are removed; manner
  adverbs ("loudly", "repeatedly", "twice") are kept. Framing ("there is", "can be heard") is removed.
  Fixed pairs ("back and forth", "rock and roll", "pots and pans", "over and over") never split.

Built-in corpus phrasings must open with a subject or noun (a bare gerund such as "knocking on a door" is
fine only because it names an object) and carry no place modifier, or the parser cannot give them back.

Known failures: a verb outside the lexicon is read as a noun ("a horse neighs and canters on pavement" splits
off "canters on pavement"); "with" + an unlisted manner noun splits ("a man speaks with a lisp"); "a child
playing with a dog" splits off "a dog"; a pronoun joins the nearest source even when it refers further back
("a man speaks and a phone rings, then he answers").
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable, Sequence

NOUN_CONNECTIVE, CLAUSE_CONNECTIVE, WEAK_CONNECTIVE = "noun", "clause", "weak"
CONNECTIVES: dict[tuple[str, ...], str] = {
    ("followed", "by"): NOUN_CONNECTIVE,
    ("along", "with"): NOUN_CONNECTIVE,
    ("together", "with"): NOUN_CONNECTIVE,
    ("as", "well", "as"): NOUN_CONNECTIVE,
    ("accompanied", "by"): NOUN_CONNECTIVE,
    ("interrupted", "by"): NOUN_CONNECTIVE,
    ("and",): CLAUSE_CONNECTIVE,
    ("then",): CLAUSE_CONNECTIVE,
    (",",): CLAUSE_CONNECTIVE,
    ("while",): CLAUSE_CONNECTIVE,
    ("whilst",): CLAUSE_CONNECTIVE,
    ("as",): CLAUSE_CONNECTIVE,
    ("before",): CLAUSE_CONNECTIVE,
    ("after",): CLAUSE_CONNECTIVE,
    ("after", "that"): CLAUSE_CONNECTIVE,
    ("until",): CLAUSE_CONNECTIVE,
    ("when",): CLAUSE_CONNECTIVE,
    ("with",): WEAK_CONNECTIVE,
    ("over",): WEAK_CONNECTIVE,
    ("during",): WEAK_CONNECTIVE,
    ("amid",): WEAK_CONNECTIVE,
    ("amidst",): WEAK_CONNECTIVE,
}
_LONGEST_CONNECTIVE = max(len(words) for words in CONNECTIVES)
# Connectives that are also particles: with nothing after them they belong to the verb ("a plane flies over").
_PARTICLE_CONNECTIVES = frozenset({"over", "after", "before"})
# Verbs that also end a resultative ("slams shut", "swings open"): after a verb they are not a second verb.
_RESULT_WORDS = frozenset({"shut", "open"})
# Connectives after which a bare -ing conjunct continues an -ing predicate ("talking and laughing").
_COORDINATORS = frozenset({"and", "then", ","})

_FIXED_PAIRS = (
    "back and forth", "up and down", "on and off", "off and on", "in and out", "to and fro", "now and then",
    "now and again", "every now and then", "rock and roll", "rock n roll", "bread and butter", "pots and pans",
    "nuts and bolts", "knives and forks", "salt and pepper", "black and white", "rhythm and blues",
    "drum and bass", "hide and seek", "hustle and bustle", "such as", "as if", "as though", "after a while",
    "for a while", "once in a while", "a while",
)
_FIXED_PAIR_PATTERN = re.compile(
    r"\b(?:" + "|".join(pair.replace(" ", r"\s+") for pair in sorted(_FIXED_PAIRS, key=len, reverse=True))
    + r")\b|\b(\w+) and \1\b"
)
_SEQUENCE_ADVERBS = r"immediately|shortly|closely|soon|later|eventually|finally"  # never how a sound is made
_REWRITES = (
    # "is followed by", "immediately followed by", "followed shortly by" -> "followed by"
    (re.compile(r"\b(?:is|are|was|were|being)\s+(?=(?:\w+ly\s+)?(?:followed|accompanied|interrupted)\s)"), ""),
    (re.compile(rf"\b(?:{_SEQUENCE_ADVERBS})\s+(?=(?:followed|accompanied|interrupted)\s)"), ""),
    (re.compile(r"\b(followed|accompanied|interrupted)\s+(?:\w+ly|soon|later)\s+by\b"), r"\1 by"),
    # "as well" meaning "too" ("a crowd laughs as well"), but not "as well as"
    (re.compile(r"\bas\s+well\b(?!\s+as\b)"), ""),
)
_PLACE_PATTERN = re.compile(
    r"\b(?:(?:somewhere|far|off|way|very)\s+)*(?:in|from|at|into|on)\s+(?:the\s+|a\s+)?"
    r"(?:(?:far|near|very)\s+)?(?:background|foreground|distance|backdrop)\b"
    r"|\b(?:not\s+far\s+away|far\s+away|far\s+off|close\s+by|from\s+afar|in\s+the\s+vicinity|nearby|faraway"
    r"|distantly|distant|faintly|faint)\b"
)
_LEADING_FRAMES = tuple(
    tuple(frame.split())
    for frame in (
        "there is", "there are", "there was", "there were", "you can hear", "one can hear", "we hear", "you hear",
        "at the same time", "at once", "after_a_while", "a moment later", "moments later", "also", "later", "soon",
        "shortly", "immediately", "suddenly", "finally", "eventually", "afterwards", "afterward", "meanwhile",
        "simultaneously", "next", "again",
    )
)
_TRAILING_FRAMES = tuple(
    tuple(frame.split())
    for frame in (
        "once again", "once more", "again", "too", "also", "afterwards", "afterward", "at the same time",
        "simultaneously", "can be heard", "could be heard", "is heard", "are heard", "is audible", "are audible",
    )
)

_DETERMINERS = frozenset(
    "a an the some several multiple many few various numerous another other this that these those his her their "
    "its my your our each every both one two three four five six seven eight nine ten lots more no any".split()
)
_PRONOUNS = frozenset("it he she they".split())
_AUXILIARIES = frozenset(
    "is are was were be being been has have had gets get got keeps keep can could will would may might".split()
)
_PREPOSITIONS = frozenset(
    "in on at from of to into onto by through across against under above below beneath near off up down out "
    "around away back for about past along toward towards inside outside behind beside upon within like via "
    "throughout".split()
)
_ADVERBS = frozenset(
    "again twice once thrice repeatedly together too also still very quite hard fast just then later soon now "
    "here there outside indoors outdoors overhead everywhere forward backward more less louder quieter softer "
    "closer faster slower nonstop".split()
)
_NOT_ADVERBS = frozenset("family belly jelly rally bully assembly supply reply lily holly gully".split())
_ADJECTIVES = frozenset(
    "loud quiet soft high low deep short long sharp heavy light small large big little brief rapid quick slow "
    "fast steady constant continuous intermittent repeated multiple electronic mechanical metallic muffled "
    "distorted shrill gentle strong harsh wet dry wooden young old male female adult tiny huge "
    "high-pitched low-pitched pitched sudden single double occasional sporadic rhythmic frequent digital "
    "industrial human animal".split()
)
_PERSONS = frozenset(
    "man woman men women boy girl boys girls child children kid kids baby babies person people guy guys lady "
    "ladies gentleman gentlemen adult adults teenager teenagers toddler someone somebody".split()
)
_IRREGULAR_PLURALS = frozenset("people men women children geese mice sheep cattle police feet teeth deer".split())
_MANNER_OR_MEDIUM = frozenset(
    "voice voices accent tone tones echo echoes reverb reverberation pitch force excitement enthusiasm emotion "
    "effect effects distortion hammer stick sticks mallet bow finger fingers hand hands tool tools foot feet "
    "microphone mic radio loudspeaker loudspeakers speaker speakers intercom phone telephone megaphone pa "
    "television tv walkie-talkie surface ground floor road water rocks stones field area city town house roof "
    "building head".split()
)
_TRANSITIVE_ING = frozenset("playing making using producing emitting giving doing taking having getting".split())
_ING_NOUNS = frozenset(
    "thing something nothing anything everything string spring king ceiling building morning evening wedding "
    "clothing pudding sibling lightning awning railing offspring ping".split()
)
_SOUND_VERBS = (
    "speak talk say shout yell scream shriek screech laugh giggle chuckle cackle cry sob weep whimper wail moan "
    "groan sigh sing hum whistle cough sneeze sniff sniffle breathe pant wheeze snore gasp burp belch hiccup clap "
    "applaud cheer chant whisper mumble murmur mutter call answer argue chat converse narrate announce pray "
    "preach lecture babble coo gurgle bark growl howl whine yelp yip yap snarl meow mew purr hiss moo bleat baa "
    "oink grunt squeal neigh whinny cluck crow quack honk chirp tweet warble trill caw squawk hoot buzz drone "
    "croak roar rumble grumble ring ding chime toll jingle jangle tinkle beep bleep bang clang clank clatter "
    "clink clunk click clack knock tap thump thud pound crash crack crackle snap pop sizzle fizz drip splash "
    "splatter spray sprinkle bubble trickle flow pour run rush gush flush drain fill rustle crinkle crumple "
    "crunch scrape scratch squeak creak rattle slam shut close open lock unlock hammer drill saw grind cut chop "
    "type write tick vibrate whir whirr idle rev accelerate decelerate start stop pass drive approach speed race "
    "zoom skid brake hover fly land take taxi blow gust fall patter burn explode fire shoot blast beat strum play "
    "perform pluck drum bounce roll slide move walk step stomp jog dance shuffle march sputter putter chug shift "
    "slow leave arrive come go continue begin fade grow increase decrease die echo reverberate resonate work "
    "operate spin turn switch press flip wash scrub brush sweep vacuum mow cook fry boil chew eat drink swallow "
    "slurp gargle spit inflate deflate wrap tear rip fold zip hit strike smash break shatter drop toss throw bump "
    "kick swim paddle row sail whoosh swoosh swish flap flutter toot blare emit produce make trot gallop snort "
    "lick lap peck nibble gnaw munch gulp sip yawn smack slap stir rinse simmer slosh swirl churn sway shake "
    "swing shudder judder wobble jiggle tumble stumble stutter stammer splutter fuss cheep twitter gobble whoop "
    "holler bellow yodel chatter whiz whizz tinker fiddle tune sew knit shred polish buff scamper scurry burst "
    "backfire drizzle pelt lash improvise rehearse recite hang dribble kiss pull rise swell resume repeat circle "
    "climb descend dive glide float recede depart reverse stall swerve dial ride fight spin hit tock"
).split()
_IRREGULAR_FORMS = {
    "speak": "spoke spoken", "sing": "sang sung", "ring": "rang rung", "blow": "blew blown", "run": "ran",
    "fall": "fell fallen", "drive": "drove driven", "fly": "flew flown", "shoot": "shot", "strike": "struck",
    "break": "broke broken", "throw": "threw thrown", "make": "made", "come": "came", "go": "went gone",
    "begin": "began begun", "grow": "grew grown", "say": "said", "take": "took taken", "get": "got gotten",
    "leave": "left", "tear": "tore torn", "beat": "beaten", "shake": "shook shaken", "swing": "swung",
    "rise": "rose risen", "hang": "hung", "ride": "rode ridden", "fight": "fought", "spin": "spun",
    "whiz": "whizzes", "sew": "sewn",
}


def _inflections(lemma: str) -> tuple[str, ...]:
    """Base, third person, past and -ing forms by the regular spelling rules ("hum" -> "hums hummed humming")."""
    consonant_y = lemma.endswith("y") and lemma[-2] not in "aeiou"
    if lemma.endswith(("s", "sh", "ch", "x", "z", "o")):
        third = lemma + "es"
    elif consonant_y:
        third = lemma[:-1] + "ies"
    else:
        third = lemma + "s"
    if consonant_y:
        past, present = lemma[:-1] + "ied", lemma + "ing"
    elif lemma.endswith("ie"):
        past, present = lemma + "d", lemma[:-2] + "ying"
    elif lemma.endswith("e"):
        past, present = lemma + "d", lemma[:-1] + "ing"
    elif re.fullmatch(r"[^aeiou]*[aeiou][^aeiouwxy]", lemma):
        past, present = lemma + lemma[-1] + "ed", lemma + lemma[-1] + "ing"
    else:
        past, present = lemma + "ed", lemma + "ing"
    return (lemma, third, past, present, *_IRREGULAR_FORMS.get(lemma, "").split())


_CONNECTIVE_WORDS = frozenset(word for words in CONNECTIVES for word in words)
_FUNCTION_WORDS = (
    _DETERMINERS | _PRONOUNS | _AUXILIARIES | _PREPOSITIONS | _ADVERBS | _CONNECTIVE_WORDS | {"there", "well"}
)
_VERB_FORMS = {form: lemma for lemma in _SOUND_VERBS for form in _inflections(lemma)}
_IRREGULAR_PAST = frozenset(form for forms in _IRREGULAR_FORMS.values() for form in forms.split())


def parse_caption(caption: str) -> list[str]:
    """Single-source phrases of a caption, lowercase, in caption order, without repeats.

    Raises ValueError for an empty caption; a caption without content words ("And then.") gives [].
    """
    if not isinstance(caption, str):
        raise TypeError(f"caption must be a string, got {type(caption).__name__}")
    if not caption.strip():
        raise ValueError("caption is empty; expected a sentence such as 'A dog barks while a man speaks'")
    phrases: list[list[str]] = []
    for connective, kind, words, placed in _conjuncts(caption):
        if not phrases:
            phrases.append(words)
        elif _continues_previous(connective, kind, phrases[-1], words, placed):
            shared = _shared_subject(connective, phrases[-1], words)
            if _repeats(phrases[-1], words):
                continue
            if shared:
                phrases.append(shared + words)
            else:
                phrases[-1] = phrases[-1] + connective + words
        else:
            phrases.append(words)
    return dedupe_phrases(" ".join(words).replace(" ,", ",").replace("_", " ") for words in phrases)


def dedupe_phrases(phrases: Iterable[str]) -> list[str]:
    """Keeps the first of phrases that name one source: equal after `normalise_phrase` and dropping a leading
    "a", "an" or "the" ("a dog barks", then "the dog barks")."""
    seen: set[str] = set()
    kept = []
    for phrase in phrases:
        key = re.sub(r"^(?:a|an|the) ", "", normalise_phrase(phrase))
        if key and key not in seen:
            seen.add(key)
            kept.append(phrase)
    return kept


def normalise_phrase(phrase: str) -> str:
    """The form phrases are compared in: lowercase, apostrophes dropped, other punctuation as spaces, single
    spaces. Articles are kept: "a dog barks" and "dog barks" are different prompts."""
    text = phrase.lower().replace("'", "").replace("\u2019", "")
    return " ".join(re.sub(r"[^a-z0-9]+", " ", text).split())


def evaluate_parser(cases: Iterable[tuple[str, Sequence[str]]]) -> dict[str, float]:
    """Phrase-level precision and recall of `parse_caption` over ``(caption, expected phrases)`` pairs.

    Phrases match exactly after `normalise_phrase`, each expected phrase at most once; counts are pooled over
    all captions. With nothing predicted (or expected) precision (or recall) is 1.
    """
    predicted_count = expected_count = matched = 0
    cases = list(cases)
    if not cases:
        raise ValueError("no cases to evaluate; expected (caption, phrases) pairs")
    for caption, expected in cases:
        predicted = Counter(normalise_phrase(phrase) for phrase in parse_caption(caption))
        wanted = Counter(normalise_phrase(phrase) for phrase in expected)
        matched += sum((predicted & wanted).values())
        predicted_count += sum(predicted.values())
        expected_count += sum(wanted.values())
    return {
        "precision": matched / predicted_count if predicted_count else 1.0,
        "recall": matched / expected_count if expected_count else 1.0,
    }


def _tokens(caption: str) -> list[str]:
    """Lowercase words and commas; fixed pairs become one token ("back_and_forth")."""
    text = caption.lower().replace("\u2019", "'").replace("&", " and ")
    text = re.sub(r"\s[-\u2013\u2014]+\s|[;:()\[\]\u2013\u2014]", " , ", text)
    text = re.sub(r"[^a-z0-9',\- ]+", " ", text).replace(",", " , ")
    text = " ".join(word.strip("'-") for word in text.split())
    for pattern, replacement in _REWRITES:
        text = pattern.sub(replacement, text)
    text = _FIXED_PAIR_PATTERN.sub(lambda match: match.group(0).replace(" ", "_"), text)
    return text.split()


def _conjuncts(caption: str) -> list[tuple[list[str], str, list[str], bool]]:
    """``(connective words, connective kind, conjunct words, had a place modifier)`` per conjunct with content.

    Adjacent connectives merge (", and then"); the kind is the last one's.
    """
    tokens = _tokens(caption)
    pieces: list[tuple[list[str], str, list[str]]] = [([], CLAUSE_CONNECTIVE, [])]
    position = 0
    while position < len(tokens):
        length, kind = _connective_at(tokens, position)
        if not length:
            pieces[-1][2].append(tokens[position])
            position += 1
            continue
        connective = tokens[position:position + length]
        position += length
        stranded = _connective_at(tokens, position)[0] or position == len(tokens)
        if stranded and length == 1 and connective[0] in _PARTICLE_CONNECTIVES and pieces[-1][2]:
            pieces[-1][2].append(connective[0])
        elif pieces[-1][2] or len(pieces) == 1:
            pieces.append((connective, kind, []))
        else:
            pieces[-1] = (pieces[-1][0] + connective, kind, [])
    conjuncts = []
    for connective, kind, words in pieces:
        words, placed = _strip_place(words)
        words = _strip_frames(words)
        if any(_is_content(word) for word in words):
            conjuncts.append((connective, kind, words, placed))
    return conjuncts


def _connective_at(tokens: list[str], position: int) -> tuple[int, str]:
    for length in range(_LONGEST_CONNECTIVE, 0, -1):
        kind = CONNECTIVES.get(tuple(tokens[position:position + length]))
        if kind:
            return length, kind
    return 0, ""


def _strip_place(words: list[str]) -> tuple[list[str], bool]:
    text = " ".join(words)
    stripped = _PLACE_PATTERN.sub(" ", text)
    return stripped.split(), stripped != text


def _strip_frames(words: list[str]) -> list[str]:
    changed = True
    while changed and words:
        changed = False
        for frame in _LEADING_FRAMES:
            if tuple(words[:len(frame)]) == frame:
                words, changed = words[len(frame):], True
        for frame in _TRAILING_FRAMES:
            if len(words) > len(frame) and tuple(words[-len(frame):]) == frame:
                words, changed = words[:-len(frame)], True
    return words


def _continues_previous(connective: list[str], kind: str, previous: list[str], words: list[str], placed: bool) -> bool:
    """Whether ``words`` describe the source of ``previous`` rather than a new one (see the module docstring)."""
    if kind == NOUN_CONNECTIVE:
        return False
    previous_is_bare_noun = _shape(previous) == "noun" and _clause_verb(previous) is None
    if kind == WEAK_CONNECTIVE:
        if placed:
            return False
        if previous_is_bare_noun and _has_finite_verb(words):
            return True
        has_verb = bool(_verb_positions(words)) or any(_is_ing(word) for word in words)
        return not has_verb and _head_noun(words) in _MANNER_OR_MEDIUM
    shape = _shape(words)
    if shape == "pronoun":
        return True
    if shape == "finite":
        return not previous_is_bare_noun and not _disagrees(previous, words)
    if shape == "participle":
        positions = _verb_positions(previous)
        own_object = any(_is_content(word) and not _is_adverb(word) for word in words[1:])
        parallel = bool(positions) and _is_ing(previous[positions[-1]])
        # a lone gerund shares what follows: "rustling and crinkling of a bag"
        return connective[-1] in _COORDINATORS and parallel and (not own_object or len(previous) == 1)
    if connective in (["and"], [","]) and _only_modifiers(previous):
        return True  # "a loud and sharp bang"
    if connective[-1] in _COORDINATORS and _only_modifiers(words) and not previous_is_bare_noun:
        return True  # "wind blows hard and strong", "a man speaks loudly and clearly"
    return connective == ["and"] and previous_is_bare_noun and _shares_subject(previous, words)


def _shared_subject(connective: list[str], previous: list[str], words: list[str]) -> list[str] | None:
    """The subject (with its auxiliaries when the verb forms match) that a verb-initial conjunct after "and",
    "then" or a comma shares with the previous clause, so that each verb becomes a phrase of its own:
    "people are playing" + "shouting" -> ["people", "are"]; "a man speaks loudly" + "laughs" -> ["a", "man"].

    None when the conjunct does not open with a verb or the previous clause has no subject: a lone gerund
    shares what follows ("rustling and crinkling of a bag") and a pronoun clause stays attached ("as it passes").
    """
    if connective[-1] not in _COORDINATORS or _shape(words) not in ("finite", "participle"):
        return None
    verb = _clause_verb(previous)
    if not verb:
        return None
    subject = previous[:verb]
    while subject and _is_adverb(subject[-1]):
        subject = subject[:-1]  # "a man loudly speaks": the adverb goes with its own verb
    if not any(_is_content(word) for word in subject):
        return None
    main = verb
    while main < len(previous) and previous[main] in _AUXILIARIES:
        main += 1
    if main == verb or main == len(previous) or words[0] in _AUXILIARIES:
        return subject
    # "is started and then revved" -> "is revved", but "is speaking and laughs" -> "laughs"
    same_form = _is_ing(previous[main]) == _is_ing(words[0]) and _is_past(previous[main]) == _is_past(words[0])
    return subject + previous[verb:main] if same_form else subject


def _clause_verb(words: list[str]) -> int | None:
    """Index of the clause's first verb, or None; a base form after persons joined by "and" counts ("a man and
    a woman talk"), though a base form after a singular noun does not in general ("a train whistle")."""
    positions = _verb_positions(words)
    if positions:
        return positions[0]
    return next(
        (index for index in range(1, len(words))
         if _VERB_FORMS.get(words[index]) == words[index] and words[index - 1] in _PERSONS),
        None,
    )


def _disagrees(previous: list[str], words: list[str]) -> bool:
    """A third-person form after a plural clause is a noun, not a second verb: "people clap and cheers"."""
    verb = _clause_verb(previous)
    first = words[0]
    if verb is None or first not in _VERB_FORMS or first == _VERB_FORMS[first] or not first.endswith("s"):
        return False
    plural_verb = previous[verb] in {"are", "were", "have", "keep", "get"} or (
        _VERB_FORMS.get(previous[verb]) == previous[verb] and previous[verb] not in _AUXILIARIES
    )
    return plural_verb


def _only_modifiers(words: list[str]) -> bool:
    """Adjectives and adverbs with nothing they could describe on their own: "hard and strong", "a loud"."""
    content = [word for word in words if word not in _DETERMINERS]
    return bool(content) and all(word in _ADJECTIVES or _is_adverb(word) for word in content)


def _shape(words: list[str]) -> str:
    """How a conjunct opens: "pronoun" ("it passes"), "finite" ("barks", "is slammed", "revved"),
    "participle" ("powering down") or "noun" (a subject or a noun phrase)."""
    first, after = words[0], words[1] if len(words) > 1 else None
    if first in _PRONOUNS:
        return "pronoun"
    if first in _AUXILIARIES:
        return "finite"
    if first in _DETERMINERS:
        return "noun"
    if _is_ing(first) or _is_past(first):
        verb_reading = first in _TRANSITIVE_ING or not _is_noun_slot(after)
        return ("participle" if _is_ing(first) else "finite") if verb_reading else "noun"
    if first in _VERB_FORMS and after != "of" and not (after and _is_verb_like(after) and after not in _RESULT_WORDS):
        return "finite"
    return "noun"


def _verb_positions(words: list[str]) -> list[int]:
    """Indices of the words that read as verbs, judged by their neighbours: after a determiner, adjective or
    preposition a word is a noun ("a loud bang"); an -ing word before a noun is an adjective ("chirping birds");
    a base form needs a plural subject ("birds chirp", not "a train whistle")."""
    positions = [0] if _shape(words) in ("finite", "participle") else []
    for index in range(1, len(words)):
        word, before = words[index], words[index - 1]
        after = words[index + 1] if index + 1 < len(words) else None
        if before in _DETERMINERS or before in _ADJECTIVES or before in _PREPOSITIONS or before.endswith("'s"):
            continue
        if word in _AUXILIARIES:
            positions.append(index)
        elif _is_ing(word) or _is_past(word):
            if word in _TRANSITIVE_ING or not _is_noun_slot(after):
                positions.append(index)
        elif word in _VERB_FORMS and (word != _VERB_FORMS[word] or _looks_plural(before)):
            positions.append(index)
    return positions


def _has_finite_verb(words: list[str]) -> bool:
    return any(not _is_ing(words[index]) for index in _verb_positions(words) if index > 0)


def _shares_subject(previous: list[str], words: list[str]) -> bool:
    """"a man" + "a woman talk(ing)": persons doing one thing together are one source (a conversation)."""
    if _head_noun(previous) not in _PERSONS:
        return False
    verb = _clause_verb(words)
    return bool(verb) and words[verb - 1] in _PERSONS


def _repeats(previous: list[str], words: list[str]) -> bool:
    """"barks" after "a dog barks": the same event again, not a new description."""
    core = words[1:] if words[0] in _PRONOUNS else words
    lemma = _VERB_FORMS.get(core[0]) if len(core) == 1 else None
    return lemma is not None and lemma in {_VERB_FORMS.get(word) for word in previous}


def _head_noun(words: list[str]) -> str:
    """The last content word before the first preposition ("a low voice in a hall" -> "voice")."""
    head = ""
    for index, word in enumerate(words):
        if index > 0 and word in _PREPOSITIONS:
            break
        if _is_content(word):
            head = word
    return head


def _is_noun_slot(word: str | None) -> bool:
    """Whether ``word`` can be the noun an -ing or past-participle adjective modifies."""
    return word is not None and _is_content(word) and not _is_adverb(word)


def _is_verb_like(word: str) -> bool:
    return word in _AUXILIARIES or word in _VERB_FORMS or _is_ing(word)


def _is_ing(word: str) -> bool:
    return len(word) > 4 and word.endswith("ing") and word not in _ING_NOUNS


def _is_past(word: str) -> bool:
    return word in _IRREGULAR_PAST or (len(word) > 4 and word.endswith("ed") and not word.endswith("eed"))


def _is_adverb(word: str) -> bool:
    return word in _ADVERBS or (len(word) > 4 and word.endswith("ly") and word not in _NOT_ADVERBS)


def _looks_plural(word: str) -> bool:
    regular = len(word) > 3 and word.endswith("s") and not word.endswith(("ss", "us", "is"))
    return regular or word in _IRREGULAR_PLURALS



def _is_content(word: str) -> bool:
    return word not in _FUNCTION_WORDS
