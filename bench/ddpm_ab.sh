#!/usr/bin/env bash
# The DDPM A/B table (docs/benchmark/ddpm_ab.csv): every variant of the benchmark's DDPM in the same CPU
# budget, two side by side on one thread each, resumable (from cached trainings and volumes).
#   bench/ddpm_ab.sh [runs/benchmark] [budget seconds]          (JUDGE=strong: the second judge)
set -euo pipefail
cd "$(dirname "$0")/.."
RUN=${1:-runs/benchmark}
BUDGET=${2:-900}
PY=${PYTHON:-.venv/bin/python}
# "base" is the benchmark's DDPM as the table measured it (constant lr, half the patches on a
# nodule), pinned here since config/benchmark.yaml has taken up two of the variants since
BASE="--set ddpm.training.lr_schedule=constant --set ddpm.training.nodule_patch_fraction=0.5"
H="$PY bench/ddpm_recipe.py --run $RUN --config config/benchmark.yaml $BASE --budget $BUDGET --threads 1"
# the table's two judges over config/benchmark.yaml; JUDGE=strong rescores the cached variants
WEAK="--judge frozen-model --judge-set nnunet.train.epochs=24 --judge-set nnunet.train.initial_lr=0.01
  --judge-set nnunet.train.bf16=false --judge-set nnunet.predict.bf16=false
  --judge-set nnunet.predict.checkpoint=checkpoint_final.pth --judge-set nnunet.predict.lung_margin_mm=null"
STRONG="--judge judge1200-lung3 --judge-set nnunet.train.epochs=48 --judge-set nnunet.train.initial_lr=0.01
  --judge-set nnunet.predict.checkpoint=checkpoint_final.pth --judge-set nnunet.predict.lung_margin_mm=3"
if [[ ${JUDGE:-weak} == strong ]]; then H="$H $STRONG"; else H="$H $WEAK"; fi

trained=(
  "base"
  "lr-cosine ddpm.training.lr_schedule=cosine"
  "min-snr ddpm.training.loss_weighting=min_snr"
  "t-logit-normal ddpm.training.timestep_sampling=logit_normal"
  "t-logit-normal-high ddpm.training.timestep_sampling=logit_normal ddpm.training.logit_normal_location=1.0"
  "t-logit-normal-0.5 ddpm.training.timestep_sampling=logit_normal ddpm.training.logit_normal_location=0.5"
  "t-logit-normal-high-mix0.3 ddpm.training.timestep_sampling=logit_normal ddpm.training.logit_normal_location=1.0 ddpm.training.logit_normal_uniform_share=0.3"
  "t-stratified ddpm.training.timestep_sampling=stratified"
  "unit-std ddpm.intensity.unit_std=true"
  "levels4 ddpm.network.channels=[16,32,64,128]"
  "patch24x4 ddpm.training.patch_size=[24,24,24] ddpm.training.batch_size=4"
  "nodule0.2 ddpm.training.nodule_patch_fraction=0.2"
  "fourier4 ddpm.network.coordinate_frequencies=4"
  "cosine-schedule ddpm.schedule.schedule=cosine"
)
sampling_only=("eta0.5 sampling.eta=0.5" "eta1 sampling.eta=1.0" "ddim25 sampling.steps=25")

run() {  # name key=value ...
  local name=$1; shift
  local sets=()
  for s in "$@"; do sets+=(--set "$s"); done
  $H --name "$name" "${sets[@]}" "${EXTRA[@]}" > "bench/results/recipe/$name.log" 2>&1 \
    && echo "done: $name" || echo "FAILED: $name (bench/results/recipe/$name.log)"
}

pairs() {  # runs the variants given, two at a time
  local list=("$@")
  for ((i = 0; i < ${#list[@]}; i += 2)); do
    run ${list[i]} &
    if (( i + 1 < ${#list[@]} )); then run ${list[i+1]} & fi
    wait
  done
}

mkdir -p bench/results/recipe
EXTRA=()
pairs "${trained[@]}"
EXTRA=(--model-from base)
pairs "${sampling_only[@]}"
