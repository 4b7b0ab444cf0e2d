import itertools

import pytest

from bisep.data import captions
from bisep.data.phrases import dedupe_phrases, evaluate_parser, normalise_phrase, parse_caption

# AudioCaps-style captions written by hand, with the phrases a person would prompt the separator with.
CAPTIONS = [
    ("A man speaks while birds chirp in the background", ["a man speaks", "birds chirp"]),
    ("Water runs followed by a toilet flushing", ["water runs", "a toilet flushing"]),
    ("A vehicle engine revving then powering down", ["a vehicle engine revving", "a vehicle engine powering down"]),
    ("People are talking and laughing with a child crying in the background",
     ["people are talking", "people are laughing", "a child crying"]),
    ("Several gunshots followed by a man yelling", ["several gunshots", "a man yelling"]),
    ("A toilet flushes and water drains", ["a toilet flushes", "water drains"]),
    ("Rain falls on a surface as thunder roars in the distance", ["rain falls on a surface", "thunder roars"]),
    ("A dog barks and then barks again", ["a dog barks"]),
    ("A man speaks then another man speaks", ["a man speaks", "another man speaks"]),
    ("A dog barks and growls", ["a dog barks", "a dog growls"]),
    ("A door is slammed", ["a door is slammed"]),
    ("Birds chirping", ["birds chirping"]),
    ("A man speaks with music playing", ["a man speaks", "music playing"]),
    ("A man speaks with a low voice", ["a man speaks with a low voice"]),
    ("A woman speaks over a loudspeaker as a crowd murmurs",
     ["a woman speaks over a loudspeaker", "a crowd murmurs"]),
    ("Wind blows hard over a microphone", ["wind blows hard over a microphone"]),
    ("A man talks over loud music", ["a man talks", "loud music"]),
    ("A helicopter flies over as birds chirp", ["a helicopter flies over", "birds chirp"]),
    ("An engine idles, then revs and accelerates away",
     ["an engine idles", "an engine revs", "an engine accelerates away"]),
    ("A baby cries and a woman speaks", ["a baby cries", "a woman speaks"]),
    ("A man and a woman talk", ["a man and a woman talk"]),
    ("A man and a woman talking as a dog barks nearby", ["a man and a woman talking", "a dog barks"]),
    ("Speech and laughter", ["speech", "laughter"]),
    ("A crowd cheers and applauds", ["a crowd cheers", "a crowd applauds"]),
    ("Typing on a keyboard followed by a mouse clicking", ["typing on a keyboard", "a mouse clicking"]),
    ("A train horn blows as a train passes by", ["a train horn blows", "a train passes by"]),
    ("A saw moving back and forth", ["a saw moving back and forth"]),
    ("Rock and roll music plays while people talk", ["rock and roll music plays", "people talk"]),
    ("A car accelerates as it passes by", ["a car accelerates as it passes by"]),
    ("Distant thunder rumbles while rain falls", ["thunder rumbles", "rain falls"]),
    ("A man speaks faintly in the background while a clock ticks", ["a man speaks", "a clock ticks"]),
    ("A woman speaks along with a sewing machine running", ["a woman speaks", "a sewing machine running"]),
    ("Music plays as well as people cheering", ["music plays", "people cheering"]),
    ("Footsteps on a wooden floor together with a door creaking",
     ["footsteps on a wooden floor", "a door creaking"]),
    ("A man talks accompanied by guitar strumming", ["a man talks", "guitar strumming"]),
    ("A siren wails during heavy traffic", ["a siren wails", "heavy traffic"]),
    ("A bell rings before a man speaks", ["a bell rings", "a man speaks"]),
    ("A man speaks after a loud beep", ["a man speaks", "a loud beep"]),
    ("A motorcycle engine starts up, idles, and then revs loudly",
     ["a motorcycle engine starts up", "a motorcycle engine idles", "a motorcycle engine revs loudly"]),
    ("Water splashes, a duck quacks and a man laughs", ["water splashes", "a duck quacks", "a man laughs"]),
    ("A vacuum cleaner runs, then a woman speaks", ["a vacuum cleaner runs", "a woman speaks"]),
    ("Wind blowing and leaves rustling with a bird calling in the distance",
     ["wind blowing", "leaves rustling", "a bird calling"]),
    ("A person snores loudly", ["a person snores loudly"]),
    ("Someone is typing on a keyboard while a man talks", ["someone is typing on a keyboard", "a man talks"]),
    ("A small dog yips and whimpers as a woman laughs",
     ["a small dog yips", "a small dog whimpers", "a woman laughs"]),
    ("A frog croaks repeatedly with insects buzzing", ["a frog croaks repeatedly", "insects buzzing"]),
    ("Pigeons coo and flap their wings", ["pigeons coo", "pigeons flap their wings"]),
    ("An aircraft engine hums steadily", ["an aircraft engine hums steadily"]),
    ("A sheep bleats while birds are chirping", ["a sheep bleats", "birds are chirping"]),
    ("Children shouting and playing with a dog barking",
     ["children shouting", "children playing", "a dog barking"]),
    ("A drill whirs and stops, followed by hammering", ["a drill whirs", "a drill stops", "hammering"]),
    ("A goat bleats and a man speaks in the foreground", ["a goat bleats", "a man speaks"]),
    ("Food sizzles in a pan while a woman talks", ["food sizzles in a pan", "a woman talks"]),
    ("A clock ticks", ["a clock ticks"]),
    ("Cars pass by on a wet road", ["cars pass by on a wet road"]),
    ("A large engine idles with some rattling", ["a large engine idles", "some rattling"]),
    ("A woman speaks with an accent", ["a woman speaks with an accent"]),
    ("A man with a deep voice speaks while music plays", ["a man with a deep voice speaks", "music plays"]),
    ("A crowd applauds and cheers, then a man speaks over a microphone",
     ["a crowd applauds", "a crowd cheers", "a man speaks over a microphone"]),
    ("Sirens blare far away as traffic passes", ["sirens blare", "traffic passes"]),
    ("There is a loud bang followed by a man screaming", ["a loud bang", "a man screaming"]),
    ("A dog barking can be heard along with a cat meowing", ["a dog barking", "a cat meowing"]),
    ("A cat meows and then a dog barks twice", ["a cat meows", "a dog barks twice"]),
    ("Ducks quack and water splashes as a man talks", ["ducks quack", "water splashes", "a man talks"]),
    ("Pots and pans clanging while people talk", ["pots and pans clanging", "people talk"]),
    ("A horn honks and a car passes, then another car passes",
     ["a horn honks", "a car passes", "another car passes"]),
    ("A woman speaks, and then the woman speaks again", ["a woman speaks"]),
    ("A jackhammer drills as a truck engine runs nearby", ["a jackhammer drills", "a truck engine runs"]),
    ("Heavy rain pours down with thunder in the distance", ["heavy rain pours down", "thunder"]),
    ("A girl giggles while a boy shouts and a dog barks", ["a girl giggles", "a boy shouts", "a dog barks"]),
    ("Bees buzz and birds tweet over a light breeze", ["bees buzz", "birds tweet", "a light breeze"]),
    ("A man speaks while typing", ["a man speaks", "typing"]),
    ("An emergency siren wails and fades away", ["an emergency siren wails", "an emergency siren fades away"]),
    ("Water trickles then a man coughs", ["water trickles", "a man coughs"]),
    ("A sewing machine operates", ["a sewing machine operates"]),
    ("Metal clanks and clangs as machinery hums", ["metal clanks", "metal clangs", "machinery hums"]),
    ("Applause and cheering from a large crowd", ["applause", "cheering from a large crowd"]),
    ("A bird whistles, a cow moos and a man speaks", ["a bird whistles", "a cow moos", "a man speaks"]),
    ("Whistling with wind blowing", ["whistling", "wind blowing"]),
    ("A telephone rings loudly until someone answers", ["a telephone rings loudly", "someone answers"]),
    ("Waves crash on the shore while seagulls squawk", ["waves crash on the shore", "seagulls squawk"]),
    ("A person whistles a tune", ["a person whistles a tune"]),
    ("An engine is started and then revved", ["an engine is started", "an engine is revved"]),
    ("A man is speaking and a crowd is laughing as well", ["a man is speaking", "a crowd is laughing"]),
    ("A plane flies overhead, and later a dog barks", ["a plane flies overhead", "a dog barks"]),
]

# Written after the first rules were final and scored once, never tuned on. Their expectations were rewritten
# for issue #22 (one phrase per verb of a shared subject) and were seen while writing those rules, so they are no
# longer held out for them; the held-out estimate for the current rules is benchmarks/caption_split.py.
HELD_OUT_CAPTIONS = [
    ("A woman speaks as food fries in a pan", ["a woman speaks", "food fries in a pan"]),
    ("Thunder rumbles and rain pours down on a roof", ["thunder rumbles", "rain pours down on a roof"]),
    ("A dog whimpers and then howls while a man laughs", ["a dog whimpers", "a dog howls", "a man laughs"]),
    ("Several people clapping followed by a woman speaking over a microphone",
     ["several people clapping", "a woman speaking over a microphone"]),
    ("An infant cries as a woman sings softly", ["an infant cries", "a woman sings softly"]),
    ("A motorcycle accelerates past, then another motorcycle passes",
     ["a motorcycle accelerates past", "another motorcycle passes"]),
    ("Ocean waves crash while wind blows into a microphone", ["ocean waves crash", "wind blows into a microphone"]),
    ("A chainsaw starts, idles and then cuts through wood",
     ["a chainsaw starts", "a chainsaw idles", "a chainsaw cuts through wood"]),
    ("Chickens cluck and a rooster crows in the distance", ["chickens cluck", "a rooster crows"]),
    ("A man speaks followed by a series of beeps", ["a man speaks", "a series of beeps"]),
    ("Water is poured into a glass as someone talks nearby", ["water is poured into a glass", "someone talks"]),
    ("A horse neighs and trots on pavement with birds singing in the background",
     ["a horse neighs", "a horse trots on pavement", "birds singing"]),
    ("A crowd murmurs while a bell tolls", ["a crowd murmurs", "a bell tolls"]),
    ("A printer whirs and clicks", ["a printer whirs", "a printer clicks"]),
    ("Someone snaps their fingers and a woman hums a tune", ["someone snaps their fingers", "a woman hums a tune"]),
    ("Insects buzzing and a lawn mower running far off", ["insects buzzing", "a lawn mower running"]),
    ("A steam whistle blows, followed by a train chugging along",
     ["a steam whistle blows", "a train chugging along"]),
    ("A young girl talks then laughs as a baby babbles",
     ["a young girl talks", "a young girl laughs", "a baby babbles"]),
    ("Glass shatters and a man shouts, then a door slams shut",
     ["glass shatters", "a man shouts", "a door slams shut"]),
    ("A truck engine rumbles with a loud hiss of air brakes", ["a truck engine rumbles", "a loud hiss of air brakes"]),
]

# The phrasing styles of the built-in corpus: clauses, -ing forms and noun phrases.
CORPUS_PHRASES = [
    "a violin plays", "someone playing the cello", "rain falling", "the sound of a police siren", "a man speaks",
    "birds chirping", "an idling engine", "applause from a crowd",
]
BRIEF_TEMPLATES = (
    "{a} while {b}", "{a} and {b}", "{a} followed by {b}", "{a} as {b}", "{a} with {b} in the background",
    "{a}, then {b}", "{a} before {b}", "{a} after {b}", "{a} in the distance while {b}", "{a}, {b} and {c}",
    "{a} while {b} and {c}", "{a} as {b} in the background",
)
CORPUS_TEMPLATES = sorted(set(BRIEF_TEMPLATES).union(
    captions.OVERLAPPING_PAIRS, captions.SEQUENTIAL_PAIRS, captions.QUIET_SECOND, captions.QUIET_FIRST,
    captions.TRIPLES, captions.SEQUENTIAL_TRIPLES,
))


@pytest.mark.parametrize("caption,expected", CAPTIONS)
def test_caption(caption, expected):
    assert parse_caption(caption) == expected


def test_precision_and_recall_on_hand_written_captions():
    assert len(CAPTIONS) >= 60
    scores = evaluate_parser(CAPTIONS)
    assert scores["precision"] >= 0.9 and scores["recall"] >= 0.9, scores


def test_precision_and_recall_on_held_out_captions():
    assert len(HELD_OUT_CAPTIONS) >= 15
    scores = evaluate_parser(HELD_OUT_CAPTIONS)
    assert scores["precision"] >= 0.8 and scores["recall"] >= 0.8, scores


@pytest.mark.parametrize("template", CORPUS_TEMPLATES)
def test_corpus_compositions_give_back_their_phrases(template):
    keys = [key for key in "abc" if "{" + key + "}" in template]
    in_caption_order = sorted(keys, key=lambda key: template.index("{" + key + "}"))
    for chosen in itertools.permutations(CORPUS_PHRASES, len(keys)):
        names = dict(zip(keys, chosen))
        caption = template.format(**names)
        expected = [names[key] for key in in_caption_order]
        assert parse_caption(caption[0].upper() + caption[1:]) == expected, caption
        assert parse_caption(caption[0].upper() + caption[1:] + ".") == expected, caption


def test_one_source_and_formatting():
    assert parse_caption("  A CAT MEOWS!  ") == ["a cat meows"]
    assert parse_caption("A dog barks; a man shouts.") == ["a dog barks", "a man shouts"]
    assert parse_caption("And then a bell rings.") == ["a bell rings"]
    assert parse_caption("A dog\u2019s bark echoes") == ["a dog's bark echoes"]


def test_empty_caption_is_refused():
    for caption in ("", "   \n\t"):
        with pytest.raises(ValueError, match="caption is empty"):
            parse_caption(caption)
    with pytest.raises(TypeError, match="must be a string"):
        parse_caption(None)


def test_caption_without_content_words_gives_no_phrases():
    assert parse_caption("And then, in the background.") == []
    assert parse_caption("...") == []


def test_dedupe_ignores_case_punctuation_and_leading_article():
    phrases = ["A dog barks.", "a dog barks", "the dog barks", "another dog barks", "Dog barks"]
    assert dedupe_phrases(phrases) == ["A dog barks.", "another dog barks"]


def test_normalise_keeps_articles():
    assert normalise_phrase("  A Dog's  bark, loud! ") == "a dogs bark loud"
    assert normalise_phrase("a dog barks") != normalise_phrase("dog barks")


def test_evaluate_parser_counts_phrases():
    cases = [
        ("A man speaks while birds chirp", ["a man speaks", "birds chirp"]),
        ("A dog barks and growls", ["a dog barks and growls"]),
    ]
    # predicted: "a man speaks", "birds chirp", "a dog barks", "a dog growls": 2 of 4 right, 2 of 3 found
    assert evaluate_parser(cases) == {"precision": 0.5, "recall": 2 / 3}
    with pytest.raises(ValueError, match="no cases"):
        evaluate_parser([])


def test_nouns_joined_by_and_are_separate_unless_persons_share_a_verb():
    assert parse_caption("A cello melody and a drum beat") == ["a cello melody", "a drum beat"]
    assert parse_caption("A man and woman talk") == ["a man and woman talk"]
    assert parse_caption("Wind and a man speaking") == ["wind", "a man speaking"]


# Issue #22: one phrase per verb of a shared subject (development examples, written with the rules).
SHARED_SUBJECT_VERBS = [
    ("People clap and cheer", ["people clap", "people cheer"]),
    ("A motorcycle engine starts and revs", ["a motorcycle engine starts", "a motorcycle engine revs"]),
    ("Children are playing and shouting", ["children are playing", "children are shouting"]),
    ("A man speaks loudly and laughs", ["a man speaks loudly", "a man laughs"]),
    ("A man loudly speaks and laughs", ["a man loudly speaks", "a man laughs"]),
    ("A dog barks, growls and whines", ["a dog barks", "a dog growls", "a dog whines"]),
    ("A train approaches, blows its horn and passes by",
     ["a train approaches", "a train blows its horn", "a train passes by"]),
    ("A man is speaking and laughs", ["a man is speaking", "a man laughs"]),
    ("A door is opened and slams shut", ["a door is opened", "a door slams shut"]),
    ("A man and a woman talk and laugh", ["a man and a woman talk", "a man and a woman laugh"]),
    ("A man coughs and then sneezes twice", ["a man coughs", "a man sneezes twice"]),
    ("A baby cries and coughs while a woman speaks", ["a baby cries", "a baby coughs", "a woman speaks"]),
    ("Bees buzz and birds chirp and sing", ["bees buzz", "birds chirp", "birds sing"]),
    ("A woman speaks, laughs and then speaks again", ["a woman speaks", "a woman laughs"]),
]

NOT_TWO_EVENTS = [
    ("Rock and roll music plays", ["rock and roll music plays"]),
    ("A car speeds up and down the street", ["a car speeds up and down the street"]),
    ("Bread and butter being spread on toast", ["bread and butter being spread on toast"]),
    ("A light is switched on and off", ["a light is switched on and off"]),
    ("A bell rings again and again", ["a bell rings again and again"]),
    ("A man speaks and then a dog barks", ["a man speaks", "a dog barks"]),
    ("Wind blows hard and strong", ["wind blows hard and strong"]),
    ("A man speaks loudly and clearly", ["a man speaks loudly and clearly"]),
    ("A loud and sharp bang", ["a loud and sharp bang"]),
    ("People clap and cheers", ["people clap", "cheers"]),
    ("Rustling and crinkling of a bag", ["rustling and crinkling of a bag"]),
    ("Footsteps and a door closes", ["footsteps", "a door closes"]),
]


@pytest.mark.parametrize("caption,expected", SHARED_SUBJECT_VERBS)
def test_verbs_of_one_subject_are_one_phrase_each(caption, expected):
    assert parse_caption(caption) == expected


@pytest.mark.parametrize("caption,expected", NOT_TWO_EVENTS)
def test_coordination_that_is_not_two_events_is_not_split(caption, expected):
    assert parse_caption(caption) == expected
