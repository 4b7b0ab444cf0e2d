import subprocess
import sys


def test_the_public_names_come_from_the_top_and_import_lazily():
    import bisep
    from bisep.grounding import load_grounding
    from bisep.separator.api import Separator

    assert bisep.Separator is Separator and bisep.load_grounding is load_grounding
    code = "import sys, bisep; sys.exit('torch' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", code]).returncode == 0


def test_applications_stay_above_the_corpus_generator_and_the_trainer():
    """`bisep serve`, `bisep demo` and `bisep separate` never import data preparation or training."""
    code = ("import sys, bisep.serve.app, bisep.demo, bisep.publish, bisep.separator.api; "
            "print(' '.join(m for m in sys.modules if m.startswith(('bisep.data', 'bisep.train'))))")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0 and result.stdout.strip() == "", result.stdout + result.stderr
