#!/usr/bin/env bash
# The GPU check: each GPU config's own QLoRA training (flash attention, sample packing, bf16: CPU=0, no CPU
# overrides) for a few steps on a real-size stand-in (random weights, the 7-8B shapes, so memory and speed are
# the real model's), measured by skilltune.throughput.ThroughputLog; the figures go into BENCHMARKS.md.
#
#   scripts/gpu_check.sh                      # mistral llama3 qwen2.5: the three architecture classes
#   scripts/gpu_check.sh llama2 zephyr        # any configs/<name>.yml
#   scripts/gpu_check.sh --dry-run            # print the commands only (no GPU needed)
#
# Env: CACHE (stand-in hub cache, default /tmp/skilltune-hub), STEPS (default 20). Each run lives in
# runs/<name>-gpucheck (its config copy with the plugin added, data, adapter, throughput.json), so runs/<name>
# and data/skills are left alone. A stand-in is ~15 GB in bf16: each is deleted after its run (64 GB disks).
set -euo pipefail
cd "$(dirname "$0")/.."

dry=
models=()
for arg in "$@"; do
    case $arg in
        --dry-run) dry=1 ;;
        -h | --help) sed -n '2,/^set /p' "$0" | sed '$d'; exit 0 ;;
        -*) echo "gpu_check: unknown option $arg" >&2; exit 2 ;;
        *) models+=("$arg") ;;
    esac
done
((${#models[@]})) || models=(mistral llama3 qwen2.5)
CACHE=${CACHE:-/tmp/skilltune-hub}
STEPS=${STEPS:-20}
PY=.venv/bin/python
PLUGIN=skilltune.throughput.ThroughputLog

# prints each command; runs it unless --dry-run
run() {
    printf '+'
    printf ' %q' "$@"
    printf '\n'
    [[ -n $dry ]] || "$@"
}

for m in "${models[@]}"; do
    [[ -f configs/$m.yml ]] || { echo "gpu_check: configs/$m.yml: no such config" >&2; exit 2; }
done
if [[ -z $dry ]]; then
    if ! nvidia-smi -L > /dev/null 2>&1; then
        echo "gpu_check: no NVIDIA GPU here (nvidia-smi missing or failing); it needs CUDA (--dry-run: the commands)" >&2
        exit 1
    fi
    run make install
    # `make install` leaves out the gpu extra; every GPU config asks for flash_attention_2
    if ! "$PY" -c 'import flash_attn' 2> /dev/null; then
        echo "gpu_check: flash-attn is not installed in .venv (the configs use flash_attention_2): $PY -m pip install -e '.[gpu]'" >&2
        exit 1
    fi
fi

summaries=() jsons=() failed=()
for m in "${models[@]}"; do
    start=$SECONDS
    name=$m-gpucheck
    dir=runs/$name
    base=$(sed -n 's/^base_model: *//p' "configs/$m.yml")
    run rm -rf "$dir"  # a failed run must not leave an older throughput.json to be reported
    run mkdir -p "$dir"
    # Axolotl's CLI cannot append to `plugins:`, so the run gets a copy of the config with the plugin added and
    # its outputs moved under $dir; everything else (attention, packing, precision, batch) as it is
    run "$PY" - "configs/$m.yml" "$dir" "$PLUGIN" << 'EOF'
import sys
import yaml

source, run_dir, plugin = sys.argv[1:]
with open(source, encoding="utf-8") as file:
    cfg = yaml.safe_load(file)
cfg["output_dir"], cfg["dataset_prepared_path"] = f"{run_dir}/adapter", f"{run_dir}/prepared"
cfg["wandb_name"] = run_dir.rsplit("/", 1)[-1]
for dataset in cfg.get("datasets", []) + cfg.get("test_datasets", []):
    dataset["path"] = dataset["path"].replace("data/skills/", f"{run_dir}/data/", 1)
cfg["plugins"] = [*(cfg.get("plugins") or []), plugin]
with open(f"{run_dir}/config.yml", "w", encoding="utf-8") as file:
    yaml.safe_dump(cfg, file, sort_keys=False)
EOF
    # STANDIN_SIZE=real: the Makefile's model step builds the 7-8B-shaped stand-in in $CACHE
    if run make train MODEL="$name" CONFIG="$dir/config.yml" DATA_DIR="$dir/data" STANDIN=1 STANDIN_SIZE=real \
        STANDIN_CACHE="$CACHE" CPU=0 N=2000 AXOLOTL_ARGS="--max-steps=$STEPS" EVAL_ARGS="--limit 20 --skip-base"; then
        ok=1
    else
        ok=
    fi
    run rm -rf "$CACHE/models--${base//\//--}"
    json=$dir/adapter/throughput.json
    if [[ -n $dry ]]; then
        jsons+=("$json")
        continue
    fi
    # a run whose training measured but whose eval failed still reports its figures, and counts as failed
    if [[ -f $json ]]; then
        jsons+=("$json")
        line=$("$PY" scripts/gpu_report.py --summary "$json")
    else
        line="$m: no $json"
    fi
    [[ -n $ok ]] || { failed+=("$m"); line="$line; make train FAILED"; }
    summaries+=("$line; $((SECONDS - start)) s")
    echo "gpu_check: ${summaries[-1]}"
done

if ((${#jsons[@]})); then
    run "$PY" scripts/gpu_report.py --benchmarks BENCHMARKS.md "${jsons[@]}"
fi
if [[ -n $dry ]]; then
    exit 0
fi
echo "gpu_check summary:"
printf '  %s\n' "${summaries[@]}"
echo "gpu_check: ${#models[@]} configs in $SECONDS s${failed[*]:+; failed: ${failed[*]}}"
((${#failed[@]} == 0))
