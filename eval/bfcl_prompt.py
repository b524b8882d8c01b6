"""How a BFCL case is put to a model, so the model sees the case's functions whatever its template.

Two layouts (PROMPT_LAYOUTS):

  tools          the functions go to the chat template as `tools` (OpenAI function specs, the
                 parameters as JSON Schema); for a template that renders them, such as the one a
                 config trains with (configs/templates/chatml_tools.jinja), or an endpoint that
                 takes `tools`
  system_prompt  BFCL's own prompt for prompting models: a system message asking for
                 `[func(arg=value), ...]` and listing the functions as JSON; for any other model
                 (SmolLM2's own template, like many, drops `tools` without a word)

Either way each function's description ends with BFCL's language hint ("Note that the provided
function is in Python 3 syntax."), as BFCL adds it for every model.
"""

from __future__ import annotations

import copy
import json

PROMPT_LAYOUTS = ("tools", "system_prompt")

# BFCL's default system prompt for prompting models, word for word: bfcl-eval 2026.3.23,
# bfcl_eval/constants/default_prompts.py (PROMPT_STYLE_TEMPLATES["classic"] in the "plaintext"
# template) as model_handler/utils.py `formulate_system_prompt` assembles it for
# DEFAULT_SYSTEM_PROMPT_FORMAT (python calls, no tool-call tag, functions as JSON). Its quirks are
# BFCL's and kept, so a score here is a score on BFCL's prompt: no space after "functions.", two
# before "You SHOULD NOT". scripts/bench_bfcl.py compares the result with BFCL's own on every case.
BFCL_SYSTEM_PROMPT = (
    "You are an expert in composing functions."
    "You are given a question and a set of possible functions. Based on the question, you will need"
    " to make one or more function/tool calls to achieve the purpose. If none of the functions can be"
    " used, point it out. If the given question lacks the parameters required by the function, also"
    " point it out.\n\n"
    "You should only return the function calls in your response.\n\n"
    "If you decide to invoke any of the function(s), you MUST put it in the format of"
    " [func_name1(params_name1=params_value1, params_name2=params_value2...), func_name2(params)]. "
    " You SHOULD NOT include any other text in the response.\n\n"
    "At each turn, you should try your best to complete the tasks requested by the user within the"
    " current turn. Continue to output functions to call until you have fulfilled the user's request"
    " to the best of your ability. Once you have no more functions to call, the system will consider"
    " the current turn complete and proceed to the next turn or task.\n\n"
    "Here is a list of functions in json format that you can invoke.\n{functions}\n"
)

# bfcl_eval/utils.py `_get_language_specific_hint`, by the category in the case id
_HINTS = {
    "java": " Note that the provided function is in Java 8 SDK syntax.",
    "javascript": " Note that the provided function is in JavaScript syntax.",
}
_PYTHON_HINT = " Note that the provided function is in Python 3 syntax."

# what `renders_tools` offers a template: names no template or conversation would hold by chance
_PROBE_FUNCTION = "skilltune_probe_function"
_PROBE_PARAMETER = "skilltune_probe_parameter"


def _language_hint(case_id: str) -> str:
    category = case_id.rsplit("_", 1)[0]  # "simple_java_12" -> "simple_java"; live ids too
    return _HINTS.get(category.rsplit("_", 1)[-1], _PYTHON_HINT)


def hinted_functions(case) -> list[dict]:
    """The case's functions as BFCL shows them to a model: copies, each description with its hint.
    (BFCL also rewrites Java and JavaScript parameter types; this scorer reads Python calls only.)"""
    functions = copy.deepcopy(case.functions)
    for function in functions:
        function["description"] = function.get("description", "") + _language_hint(case.id)
    return functions


def system_prompt_messages(case) -> list[dict]:
    """The question's messages with BFCL's system prompt first, as BFCL's
    `system_prompt_pre_processing_chat_model` builds them: a system message the question has
    already gets the prompt in front of its content."""
    prompt = BFCL_SYSTEM_PROMPT.format(functions=json.dumps(hinted_functions(case), indent=4))
    messages = copy.deepcopy(case.messages)
    if messages and messages[0]["role"] == "system":
        messages[0]["content"] = prompt + "\n\n" + messages[0]["content"]
        return messages
    return [{"role": "system", "content": prompt}, *messages]


def tools_of(case) -> list[dict]:
    """The case's functions as OpenAI `tools`, their parameters as JSON Schema."""
    return [
        {"type": "function", "function": {**function, "parameters": case.schemas[function["name"]]}}
        for function in hinted_functions(case)
    ]


def case_record(case, layout: str = "tools") -> dict:
    """A chat record for eval/predict.py backends in the named layout, with a placeholder answer
    (backends leave the last message out)."""
    answer = {"role": "assistant", "content": ""}
    if layout == "tools":
        return {"messages": [*case.messages, answer], "tools": tools_of(case)}
    if layout == "system_prompt":
        return {"messages": [*system_prompt_messages(case), answer]}
    raise ValueError(f"unknown prompt layout {layout!r}; expected one of {', '.join(PROMPT_LAYOUTS)}")


def renders_tools(tokenizer) -> bool:
    """Does the tokenizer's chat template show the model the `tools` it is given? Asked by
    rendering a probe function and looking for its name and its parameter's in the text."""
    tools = [
        {
            "type": "function",
            "function": {
                "name": _PROBE_FUNCTION,
                "description": "probe",
                "parameters": {"type": "object", "properties": {_PROBE_PARAMETER: {"type": "string"}}},
            },
        }
    ]
    try:
        text = tokenizer.apply_chat_template(
            [{"role": "user", "content": "hello"}], tools=tools, add_generation_prompt=True, tokenize=False
        )
    except Exception:  # a template may raise on anything (jinja's raise_exception): then it shows nothing
        return False
    return _PROBE_FUNCTION in text and _PROBE_PARAMETER in text
