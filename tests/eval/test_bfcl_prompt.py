"""eval/bfcl_prompt.py and `eval bfcl`'s model options: every model is shown the case's functions."""

import json
from types import SimpleNamespace

import pytest
from click.testing import CliRunner
from conftest import REPO, SMOLLM2, needs_smollm2

from eval.bfcl import BfclCase, bfcl_files, load_bfcl
from eval.bfcl_config import TOKENIZERS_OWN, model_settings
from eval.bfcl_prompt import BFCL_SYSTEM_PROMPT, case_record, hinted_functions, renders_tools, system_prompt_messages
from eval.cli.bfcl import bfcl_command

TOOLS_TEMPLATE = REPO / "configs" / "templates" / "chatml_tools.jinja"
LISTING = "Here is a list of functions in json format that you can invoke.\n"


def sample_cases() -> list[BfclCase]:
    """Cases with one function, several, nested parameters, and a system message of their own."""
    cases = []
    for category in ("simple_python", "multiple", "parallel_multiple", "live_multiple"):
        cases += load_bfcl(*bfcl_files(category))[:15]
    with_system = [case for case in load_bfcl(*bfcl_files("live_simple")) if case.messages[0]["role"] == "system"]
    return cases + with_system[:3]


@pytest.fixture(scope="module")
def tokenizer():
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(str(SMOLLM2))


def render(tokenizer, record: dict, template: str | None = None) -> str:
    return tokenizer.apply_chat_template(
        record["messages"][:-1],
        tools=record.get("tools"),
        chat_template=template,
        add_generation_prompt=True,
        tokenize=False,
    )


def assert_shows_every_function(text: str, case: BfclCase) -> None:
    for function in case.functions:
        assert f'"{function["name"]}"' in text, (case.id, function["name"])
        for parameter in function.get("parameters", {}).get("properties", {}):
            assert f'"{parameter}"' in text, (case.id, function["name"], parameter)
    assert case.messages[-1]["content"] in text


@needs_smollm2
def test_both_layouts_show_every_function_and_parameter(tokenizer):
    tools_template = TOOLS_TEMPLATE.read_text(encoding="utf-8")
    for case in sample_cases():
        assert_shows_every_function(render(tokenizer, case_record(case, "tools"), tools_template), case)
        # the system prompt through SmolLM2's own template, which knows nothing of tools
        assert_shows_every_function(render(tokenizer, case_record(case, "system_prompt")), case)


@needs_smollm2
def test_smollm2s_own_template_drops_tools(tokenizer):
    # what `eval bfcl` prompted with before: the tools layout through the model's own template
    case = load_bfcl(*bfcl_files("simple_python"))[0]
    assert case.functions[0]["name"] not in render(tokenizer, case_record(case, "tools"))
    assert not renders_tools(tokenizer)


@needs_smollm2
def test_renders_tools_tells_templates_apart(tokenizer):
    assert renders_tools(SimpleNamespace(apply_chat_template=_with_template(tokenizer, TOOLS_TEMPLATE.read_text())))
    raising = "{{ raise_exception('tools are not supported') }}"
    assert not renders_tools(SimpleNamespace(apply_chat_template=_with_template(tokenizer, raising)))


def _with_template(tokenizer, template: str):
    return lambda *args, **kwargs: tokenizer.apply_chat_template(*args, chat_template=template, **kwargs)


def test_the_system_prompt_lists_the_functions_as_bfcl_does():
    for case in sample_cases():
        messages = system_prompt_messages(case)
        assert messages[0]["role"] == "system" and messages[0]["content"].startswith(
            "You are an expert in composing functions."
        )
        content, own = messages[0]["content"], case.messages[0]["content"]
        if case.messages[0]["role"] == "system":  # the case's own system message follows BFCL's prompt
            assert content.endswith("\n\n" + own) and messages[1:] == case.messages[1:]
            content = content[: -len(own) - 2]
        else:
            assert messages[1:] == case.messages
        listed = content.split(LISTING, 1)[1]
        assert json.loads(listed) == hinted_functions(case)  # every function, as given, in BFCL's JSON
    assert "[func_name1(params_name1=params_value1, params_name2=params_value2...), func_name2(params)]" in (
        BFCL_SYSTEM_PROMPT
    )


def test_functions_get_bfcls_language_hint_and_the_case_is_left_alone():
    case = load_bfcl(*bfcl_files("simple_python"))[0]
    before = json.dumps(case.functions)
    [function] = hinted_functions(case)
    assert function["description"].endswith(". Note that the provided function is in Python 3 syntax.")
    java = load_bfcl(*bfcl_files("simple_java"))[0]
    assert hinted_functions(java)[0]["description"].endswith("Note that the provided function is in Java 8 SDK syntax.")
    case_record(case, "system_prompt"), case_record(case, "tools")
    assert json.dumps(case.functions) == before
    with pytest.raises(ValueError, match="unknown prompt layout 'xml'"):
        case_record(case, "xml")


# --- where the model comes from


def write_config(tmp_path, text: str):
    path = tmp_path / "model.yml"
    path.write_text(text)
    return path


def test_a_config_gives_model_template_and_trained_adapter(tmp_path):
    adapter = tmp_path / "adapter"
    config = write_config(
        tmp_path,
        f"base_model: {SMOLLM2}\nchat_template: jinja\nchat_template_jinja: {TOOLS_TEMPLATE}\n"
        f"output_dir: {adapter}\nload_in_4bit: true\n",
    )
    untrained = model_settings(config, None, None, False)
    assert (untrained.base_model, untrained.adapter, untrained.tokenizer_dir) == (str(SMOLLM2), None, None)
    assert untrained.chat_template == TOOLS_TEMPLATE.read_text() and untrained.template_source == str(TOOLS_TEMPLATE)
    assert untrained.load_in_4bit
    adapter.mkdir()
    (adapter / "adapter_config.json").write_text("{}")
    (adapter / "tokenizer_config.json").write_text("{}")
    trained = model_settings(config, None, None, False)
    assert (trained.adapter, trained.tokenizer_dir) == (str(adapter), str(adapter))
    assert model_settings(config, None, None, True).adapter is None  # --no-adapter: the base model alone
    assert model_settings(config, None, "other", False).adapter == "other"
    plain = model_settings(None, "models/x", None, False)
    assert (plain.chat_template, plain.template_source, plain.adapter) == (None, TOKENIZERS_OWN, None)


@pytest.mark.parametrize(
    "text, options, message",
    [
        ("base_model: [unclosed\n", [], "{config}: not valid YAML: "),
        ("- a list\n", [], "{config}: not an Axolotl config (a YAML mapping with base_model:)"),
        ("output_dir: runs/x\n", [], "{config}: no `base_model:`"),
        ("base_model: 42\n", [], "{config}: `base_model: 42` must be a string (a name or a path)"),
        (
            "base_model: m\nchat_template: jinja\nchat_template_jinja: configs/templates/nope.jinja\n",
            [],
            "{config}: `chat_template_jinja: configs/templates/nope.jinja`: no such file",
        ),
        ("base_model: m\nchat_template: no_such_template\n", [], "{config}: `chat_template: no_such_template`: "),
        ("base_model: m\n", ["--base-model", "m"], "--config and --base-model both name the base model"),
        ("base_model: m\n", ["--adapter", "a", "--no-adapter"], "--adapter and --no-adapter contradict each other"),
        (
            "base_model: m\n",
            ["--backend", "openai", "--base-url", "http://127.0.0.1:9/v1", "--model", "m"],
            "--config is for --backend transformers, not openai",
        ),
    ],
)
def test_config_problems_are_one_line_before_any_model_loads(tmp_path, text, options, message):
    config = write_config(tmp_path, text)
    args = ["--config", str(config), "--limit", "2", "--out", str(tmp_path / "out"), *options]
    result = CliRunner().invoke(bfcl_command, args)
    assert result.exit_code == 1, result.output
    assert result.stderr.startswith("error: " + message.format(config=config)), result.stderr
    assert result.stderr.count("\n") == 1 and not (tmp_path / "out").exists()


@needs_smollm2
def test_layout_follows_the_template(tokenizer, tmp_path):
    from eval.cli.bfcl import _layout

    def settings(layout):
        return SimpleNamespace(prompt_layout=layout)

    own = SimpleNamespace(tokenizer=tokenizer)
    assert _layout(settings("auto"), own) == "system_prompt"
    with pytest.raises(SystemExit):
        _layout(settings("tools"), own)  # it would see no functions
    assert _layout(settings("auto"), SimpleNamespace()) == "system_prompt"  # an endpoint: nothing to look at
    assert _layout(settings("tools"), SimpleNamespace()) == "tools"


@needs_smollm2
def test_a_config_run_prompts_with_the_training_template(tmp_path, monkeypatch):
    monkeypatch.chdir(REPO)  # the config's paths are relative to the repository
    out = tmp_path / "out"
    args = ["--config", str(REPO / "configs" / "smollm2.yml"), "--no-adapter", "--limit", "2"]
    args += ["--max-new-tokens", "8", "--out", str(out)]
    result = CliRunner().invoke(bfcl_command, args, catch_exceptions=False)
    assert result.exit_code == 0, result.output
    assert "BFCL simple_python (prompt: tools, decoding: free): 2 cases" in result.stdout
    scored = json.loads((out / "bfcl-simple_python.json").read_text())
    assert scored["prompt_layout"] == "tools" and scored["adapter"] is None
    assert scored["chat_template"] == "configs/templates/chatml_tools.jinja"
    saved = (out / "bfcl-simple_python-predictions.jsonl").read_text().splitlines()
    assert [json.loads(line)["id"] for line in saved] == ["simple_python_0", "simple_python_1"]
