import contextlib
import logging
import os
import subprocess
import sys

import pytest
import torch

from lungsynth import runtime
from lungsynth.errors import InputError


def test_cpu_autocasts_to_bf16_where_it_has_fast_kernels(monkeypatch):
    monkeypatch.setattr(runtime, "cpu_has_fast_bf16", lambda: True)
    with runtime.autocast(torch.device("cpu"), True):
        out = torch.nn.functional.linear(torch.randn(2, 4), torch.randn(3, 4))
    assert out.dtype == torch.bfloat16


def test_cpu_without_fast_bf16_runs_fp32_with_one_warning(monkeypatch, caplog):
    monkeypatch.setattr(runtime, "cpu_has_fast_bf16", lambda: False)
    monkeypatch.setattr(runtime, "_warned", set())
    with caplog.at_level(logging.WARNING, logger="lungsynth"):
        for _ in range(3):
            context = runtime.autocast(torch.device("cpu"), True)
            with context:
                out = torch.nn.functional.linear(torch.randn(2, 4), torch.randn(3, 4))
            assert isinstance(context, contextlib.nullcontext) and out.dtype == torch.float32
    assert [r.message for r in caplog.records].count(caplog.records[0].message) == 1
    assert "running in fp32" in caplog.records[0].message
    assert not runtime.bf16_is_used(torch.device("cpu"), True)


def test_bf16_off_is_never_used():
    assert not runtime.bf16_is_used(torch.device("cpu"), False)
    assert isinstance(runtime.autocast(torch.device("cpu"), False), contextlib.nullcontext)


def test_cuda_asked_for_without_a_gpu_is_an_input_error(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(InputError, match="'cuda' asked for, but .* on host "):
        runtime.resolve_device("cuda")
    assert runtime.resolve_device("auto").type == "cpu"


def test_missing_gpu_message_names_host_visible_devices_torch_cuda_and_what_to_check(monkeypatch):
    import platform

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "3")
    with pytest.raises(InputError) as caught:
        runtime.require_cuda("rule train_ddpm", "resources gpu=1 asked for")
    message = str(caught.value)
    assert message.startswith("rule train_ddpm: resources gpu=1 asked for")
    for expected in (platform.node(), "CUDA_VISIBLE_DEVICES=3", torch.__version__, "nvidia-smi",
                     "execution.device: cpu"):
        assert expected in message


def test_a_job_that_asked_for_a_gpu_stops_at_once_without_one(monkeypatch, tmp_path):
    from types import SimpleNamespace

    from lungsynth import scripting

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    ran = []
    job = SimpleNamespace(log=[str(tmp_path / "job.log")], threads=1, rule="sample",
                          resources=SimpleNamespace(gpu=1), config={"execution": {"device": "auto"}})
    with pytest.raises(SystemExit) as stopped:
        scripting.run(job, lambda: ran.append(True))
    assert stopped.value.code == 1 and not ran
    assert "rule sample: resources gpu=1 asked for" in (tmp_path / "job.log").read_text()
    assert scripting.job_device(job) == "cuda"
    job.resources.gpu = 0
    assert scripting.job_device(job) == "auto"


def test_a_job_script_leaves_torch_unloaded_and_a_torch_loaded_later_takes_its_threads(tmp_path):
    """A job that needs no network must not pay torch's import; one that does gets the job's threads."""
    check = ("import sys, types\n"
             "from lungsynth import scripting\n"
             f"job = types.SimpleNamespace(log=[{str(tmp_path / 'job.log')!r}], threads=1)\n"
             "scripting.run(job, lambda: print('torch loaded' if 'torch' in sys.modules else 'torch not loaded'))\n"
             "import torch\n"
             "print('threads', torch.get_num_threads())\n")
    env = {k: v for k, v in os.environ.items() if k not in ("OMP_NUM_THREADS", "MKL_NUM_THREADS")}
    result = subprocess.run([sys.executable, "-c", check], capture_output=True, text=True, env=env, timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split("\n")[:2] == ["torch not loaded", "threads 1"], result.stdout


def test_gpu_bf16_needs_native_support(monkeypatch):
    cuda = torch.device("cuda", 0)
    monkeypatch.setattr(torch.cuda, "get_device_capability", lambda index=None: (7, 0))   # V100: emulated
    assert not runtime.bf16_is_used(cuda, True)
    monkeypatch.setattr(torch.cuda, "get_device_capability", lambda index=None: (8, 0))   # A100
    assert runtime.bf16_is_used(cuda, True)


def test_memory_format_auto_is_channels_last_for_fp32_on_several_cpu_threads_only(monkeypatch):
    cpu = torch.device("cpu")
    monkeypatch.setattr(runtime, "cpu_has_fast_bf16", lambda: False)   # an AVX2 machine: bf16 falls back
    assert runtime.memory_format(cpu, runtime.bf16_is_used(cpu, True), threads=2) == torch.channels_last_3d
    assert runtime.memory_format(cpu, runtime.bf16_is_used(cpu, True), threads=1) == torch.contiguous_format
    monkeypatch.setattr(runtime, "cpu_has_fast_bf16", lambda: True)
    assert runtime.memory_format(cpu, runtime.bf16_is_used(cpu, True), threads=2) == torch.contiguous_format
    assert runtime.memory_format(cpu, False, "contiguous") == torch.contiguous_format
    assert runtime.memory_format(torch.device("cuda"), False) == torch.contiguous_format
    with pytest.raises(InputError, match="ddpm_memory_format"):
        runtime.memory_format(cpu, False, "nhwc")


def test_cpu_description_names_the_model_and_the_kernel_flags(monkeypatch):
    for var in ("ONEDNN_MAX_CPU_ISA", "DNNL_MAX_CPU_ISA"):
        monkeypatch.delenv(var, raising=False)
    text = runtime.cpu_description()
    assert text.endswith("]") and "[" in text
    flags = text[text.index("[") + 1:-1].split()
    assert set(flags) <= set(runtime.KERNEL_FLAGS)


@pytest.mark.parametrize("var", ["ONEDNN_MAX_CPU_ISA", "DNNL_MAX_CPU_ISA"])
def test_onednn_capped_below_avx512_never_takes_bf16_for_fast_and_says_so(monkeypatch, var):
    monkeypatch.setattr(torch.cpu, "_is_avx512_supported", lambda: True, raising=False)  # an AMX machine
    for other in ("ONEDNN_MAX_CPU_ISA", "DNNL_MAX_CPU_ISA"):
        monkeypatch.delenv(other, raising=False)
    assert runtime.cpu_has_fast_bf16()
    monkeypatch.setenv(var, "avx2")
    assert runtime.onednn_isa_cap() == "AVX2"
    assert not runtime.cpu_has_fast_bf16()
    assert not runtime.bf16_is_used(torch.device("cpu"), True)
    assert runtime.cpu_description().endswith("] oneDNN capped at AVX2")
    monkeypatch.setenv(var, "AVX512_CORE_AMX")
    assert runtime.cpu_has_fast_bf16()
