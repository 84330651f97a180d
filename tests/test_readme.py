"""The README's examples run as doctests: the printed output there is real."""
import doctest
import pathlib
import re

README = pathlib.Path(__file__).resolve().parent.parent / "README.md"


def test_readme_examples_run():
    blocks = re.findall(r"```python\n(.*?)```", README.read_text(), flags=re.S)
    examples = "\n".join(b for b in blocks if b.lstrip().startswith(">>>"))
    assert examples.count(">>>") > 10
    parser = doctest.DocTestParser()
    test = parser.get_doctest(examples, {}, "README.md", str(README), 0)
    runner = doctest.DocTestRunner(optionflags=doctest.NORMALIZE_WHITESPACE | doctest.ELLIPSIS)
    runner.run(test)
    assert runner.failures == 0, f"{runner.failures} README example(s) failed (see output above)"
