"""The public API's surface: the names type checkers see are the names ``nst`` serves,
one argument order across the run functions, and choices typed so that mypy catches a
misspelt one."""

from __future__ import annotations

import ast
import inspect
from pathlib import Path

import pytest

import nst

INIT = Path(nst.__file__)


def test_the_names_type_checkers_see_are_those_nst_serves():
    tree = ast.parse(INIT.read_text())
    spelled = None
    for node in ast.walk(tree):
        named = isinstance(node, ast.Assign) and any(
            isinstance(t, ast.Name) and t.id == "__all__" for t in node.targets
        )
        if named and isinstance(node.value, ast.List):  # type: ignore[union-attr]
            spelled = [ast.literal_eval(e) for e in node.value.elts]  # type: ignore[union-attr]
    assert spelled is not None, "no literal __all__ for type checkers"
    assert sorted(spelled) == nst.__all__
    for name in nst.__all__:
        assert getattr(nst, name) is not None
    assert nst.TermSpec.__module__ == "nst.objective.terms"  # the extension point


@pytest.mark.parametrize("run", [nst.stylize, nst.reconstruct_content, nst.synthesize_texture])
def test_every_run_function_takes_its_inputs_then_config_then_on_event(run):
    params = list(inspect.signature(run).parameters.values())
    positional = [p.name for p in params if p.kind is p.POSITIONAL_OR_KEYWORD]
    keyword = [p.name for p in params if p.kind is p.KEYWORD_ONLY]
    assert positional[-2:] == ["config", "on_event"]
    assert {"stop", "preview_every"} <= set(keyword)


@pytest.mark.typecheck
def test_a_misspelt_choice_is_a_type_error():
    api = pytest.importorskip("mypy.api")
    code = "import nst\nnst.Config(optimizer='lbgfs', pooling='max', style_loss='w2')\n"
    args = ["--config-file=", "--no-incremental", "--follow-imports=silent", "-c", code]
    out, _, status = api.run(args)
    assert status == 1, out
    assert 'Argument "optimizer" to "Config" has incompatible type "Literal[\'lbgfs\']"' in out
    assert out.count("error:") == 1  # the right choices pass
