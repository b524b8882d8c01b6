"""skilltune datagen: skill packs to validated Axolotl chat records.

python -m datagen check examples/skills
python -m datagen skills --pack examples/skills --out data/skills --n 1000 --seed 0
python -m datagen validate data/skills/train.jsonl
python -m datagen stats data/skills --tokenizer models/SmolLM2-135M-Instruct
python -m datagen llm --base-url http://127.0.0.1:8000/v1 --model local --out data/llm/pairs.jsonl
python -m datagen merge-review review/ --pack examples/skills
python -m datagen openai-export data/skills --out data/openai/train.jsonl
python -m datagen openai-ft data/openai/train.jsonl --model gpt-4o-mini-2024-07-18 --n-epochs 3
python -m datagen documents examples/documents --out data/documents
python -m datagen conversations examples/conversations/logs --out data/conversations
python -m datagen instructions examples/instructions/pairs.jsonl --to chat --out data/instructions
"""

from datagen.cli import cli

if __name__ == "__main__":
    cli(prog_name="python -m datagen")
