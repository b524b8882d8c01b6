"""Files that serve a tuned model outside Python: a llama.cpp grammar, the pack as OpenAI tools, and
an Ollama Modelfile that lays prompts out as training did (docs/SERVING.md).

    from skilltune.serving.files import options_from_manifest, write_serving_files

    write_serving_files("examples/skills", "configs/smollm2.yml", "runs/smollm2/export",
                        "model-q8_0.gguf", **options_from_manifest("data/skills/manifest.json"))

Modules, one job each:
    gbnf          GBNF text: literals, character classes, rules (no skill knowledge)
    call_grammar  the skill pack's call language as GBNF rules (eval/constrain.py's language)
    modelfile     the training chat template recognised and written as an Ollama Modelfile
    files         the three files written into an export folder
"""
