from bisep.files import output_stems, slug


def test_slug_keeps_letters_and_digits_only():
    assert slug("Rain falling!") == "rain-falling"
    assert slug("???") == "sound"


def test_output_stems_are_short_and_never_collide():
    long = "a " + "very " * 30 + "long prompt"
    stems = output_stems(["a dog!", "a dog?", "input", long, "rain"])
    assert stems == {"a dog!": "1-a-dog", "a dog?": "2-a-dog", "input": "3-input",
                     long: slug(long)[:60].strip("-"), "rain": "rain"}
    assert all(len(stem) <= 60 for stem in stems.values())
