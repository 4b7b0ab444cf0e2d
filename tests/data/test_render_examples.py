from bisep.data.examples import ExampleSpec, render_examples
from bisep.examples import list_examples


def test_generator_gives_the_same_bytes_for_the_same_seed(tmp_path):
    spec = (ExampleSpec("tiny", ("rain", "clock ticking")),)

    def render(name, seed):
        folder = tmp_path / name
        render_examples(folder, seed=seed, specs=spec, seconds=2.0, sample_rate=8000)
        return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}

    first, again, other = render("a", 7), render("b", 7), render("c", 8)
    assert first == again
    assert first["tiny/mixture.flac"] != other["tiny/mixture.flac"]
    example = list_examples(tmp_path / "a")[0]
    assert example.name == "tiny" and len(example.prompts) == 2
