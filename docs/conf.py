"""Sphinx configuration: the API reference is built from the Google-style docstrings (autodoc +
napoleon). Built in the test run with warnings as errors (tests/test_docs.py):

    sphinx-build -W --keep-going -b html docs docs/_build/html
"""

import os
import re

os.environ.setdefault("QEQPROP_NATIVE", "0")  # importing the modules documents them; no kernel build

project = "qeqprop"
author = "qeqprop contributors"
copyright = "qeqprop contributors"
extensions = ["sphinx.ext.autodoc", "sphinx.ext.napoleon", "sphinx.ext.mathjax"]
napoleon_google_docstring = True
napoleon_numpy_docstring = True  # classical/ and systems/ write "Parameters\n----------" sections
napoleon_use_param = False  # "name : description" lines: the description is not a type to cross-reference
autodoc_member_order = "bysource"
autodoc_typehints = "signature"
autodoc_default_options = {"members": True, "undoc-members": False, "show-inheritance": True}
html_theme = "alabaster"
exclude_patterns = ["_build"]


# The docstrings write maths in plain text so that help() reads well: bra-kets <psi|O|psi>, |m><m|,
# norms ||H psi - E psi|| and |J|. reStructuredText reads "|...|" as a substitution reference (none
# is defined anywhere here), so outside ``inline literals``, literal blocks and doctests a "|" is
# escaped to stand for itself. Every other markup problem is fixed in the docstring.
_LITERAL = re.compile(r"(``.*?``)")


def _escape_bars(app, what, name, obj, options, lines):
    literal_indent = None  # indentation of the line that opened a "::" literal block
    for i, line in enumerate(lines):
        indent = len(line) - len(line.lstrip())
        if literal_indent is not None and line.strip() and indent <= literal_indent:
            literal_indent = None
        if literal_indent is None and not line.lstrip().startswith((">>>", "...")):
            lines[i] = "".join(part if part.startswith("``") else part.replace("|", r"\|")
                               for part in _LITERAL.split(line))
        if line.rstrip().endswith("::") and literal_indent is None:
            literal_indent = indent


def setup(app):
    app.connect("autodoc-process-docstring", _escape_bars)
