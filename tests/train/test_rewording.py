import numpy as np

from bisep.train.rewording import FRAMINGS, delete_words, reword


def test_no_rewording_draws_nothing_and_changes_nothing():
    rng = np.random.default_rng(3)
    assert reword("a dog barks", rng, 0.0) == "a dog barks"
    assert rng.random() == np.random.default_rng(3).random()


def test_rewordings_keep_content_and_vary():
    rng = np.random.default_rng(0)
    phrase = "someone playing the cello loudly"
    outputs = [reword(phrase, rng, 1.0) for _ in range(300)]
    assert sum(output != phrase for output in outputs) > 240
    assert len(set(outputs)) > 60
    words = set(phrase.split())
    # every rewording keeps at least one word of the phrase, and framed ones hold a template's fixed words
    assert all(words & set(output.replace(",", "").split()) for output in outputs)
    framed = [o for o in outputs if any(f.replace("{}", "").strip(" ,") in o for f in FRAMINGS)]
    assert 100 < len(framed) < 300


def test_half_rewording_leaves_about_half_unchanged():
    rng = np.random.default_rng(1)
    unchanged = sum(reword("rain falling on a roof", rng, 0.5) == "rain falling on a roof" for _ in range(1000))
    # half are left alone, and a third of the rest only lose words, which leaves all 5 with 0.8 ** 5
    assert 480 < unchanged < 630


def test_word_deletion_never_empties_a_phrase():
    rng = np.random.default_rng(2)
    for _ in range(200):
        kept = delete_words("a dog", rng, probability=0.99)
        assert kept in ("a", "dog", "a dog")
    assert delete_words("thunder", rng, probability=1.0) == "thunder"


def test_same_seed_same_rewordings():
    first = [reword("a siren wails", np.random.default_rng(7), 0.8) for _ in range(5)]
    second = [reword("a siren wails", np.random.default_rng(7), 0.8) for _ in range(5)]
    assert first == second
