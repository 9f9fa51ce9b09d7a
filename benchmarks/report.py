"""The report: the environment recorded with every result (library versions, device, CPU, cores,
XLA flags, OpenMP wait policy, precision) and the human-readable table of a results dict, which
`python -m benchmarks.run` prints and stores in the JSON under "table".
"""

from __future__ import annotations

import os
import platform

from benchmarks.timing import usable_cores


def environment():
    import flax
    import jax
    import optax

    try:
        import torch
        torch_version = torch.__version__
        torch_threads = torch.get_num_threads()
    except ImportError:
        torch_version, torch_threads = None, None
    cpu = platform.processor()
    try:
        with open("/proc/cpuinfo") as f:
            cpu = next(line.split(":", 1)[1].strip() for line in f if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    dev = jax.devices()[0]
    gpu = dev.platform == "gpu"
    precision = ("float32 inputs, JAX's default dot precision (TF32 on this GPU); torch set to TF32 matmuls "
                 "and cuDNN convs" if gpu else "float32")
    return {"precision": precision, "python": platform.python_version(), "jax": jax.__version__,
            "flax": flax.__version__, "optax": optax.__version__, "torch": torch_version,
            "torch_threads": torch_threads,
            "device": f"{dev.platform}:{getattr(dev, 'device_kind', '')}", "cpu": cpu, "cores": os.cpu_count(),
            "usable_cores": usable_cores(), "xla_flags": os.environ.get("XLA_FLAGS", ""),
            "omp_wait_policy": os.environ.get("OMP_WAIT_POLICY", "")}


def table(results) -> str:
    lines = []
    env = results["environment"]
    lines.append(f"jax {env['jax']}  flax {env['flax']}  optax {env['optax']}  torch {env['torch']}  "
                 f"device {env['device']}  cores {env['cores']}  load {results['load_before']} -> {results['load_after']}")
    ts = results.get("train_step", {})
    if ts:
        lines.append("")
        lines.append(f"{'train step (median)':<34}{'steps/s':>9}{'ex/s':>10}{'ms/step':>9}{'min ms':>8}")
        for arch, e in ts.items():
            for name in ("toolkit", "toolkit_one_pass", "toolkit_xla_convT", "plain_flax", "torch", "torch_1thread"):
                if name in e:
                    r = e[name]
                    label = f"{e['arch']} b{e['batch']} {name}"
                    lines.append(f"{label:<34}{r['steps_per_s']:9.1f}{r['examples_per_s']:10.0f}"
                                 f"{r['ms_per_step']:9.2f}{r['ms_per_step_min']:8.2f}")
        lines.append("")
        for arch, e in ts.items():
            parts = []
            if "toolkit_vs_torch" in e:
                parts.append(f"toolkit/torch {e['toolkit_vs_torch']:.2f}x (vs the faster torch setting; "
                             f"vs torch on all cores {e['toolkit_vs_torch_all_cores']:.2f}x)")
            if "toolkit_vs_plain_flax" in e:
                parts.append(f"toolkit/plain flax {e['toolkit_vs_plain_flax']:.3f}")
            if "matmul_convT_vs_xla_convT" in e:
                parts.append(f"matmul convT / XLA convT {e['matmul_convT_vs_xla_convT']:.2f}x")
            if "split_vs_one_pass" in e:
                parts.append(f"{e['batch_splits']} batch splits / one pass {e['split_vs_one_pass']:.2f}x")
            lines.append(f"  {arch:<13} " + ", ".join(parts) + "  (throughput ratios, paired medians)")
        for arch, e in ts.items():
            if "flops" in e:
                f = e["flops"]
                n = f["matmul_size"]
                lines.append(f"  {arch} step {f['analytic_matmul_flops_per_step'] / 1e9:.3f} GFLOP (XLA cost analysis "
                             f"{f['xla_cost_analysis_flops_per_step'] / 1e9:.3f}): {f['achieved_gflops']:.1f} GFLOP/s vs "
                             f"{n}^2 matmul {f['matmul_gflops']:.1f} GFLOP/s "
                             f"-> roofline {100 * f['roofline_ratio']:.0f}%")
                if "gemms_only_gflops" in f:
                    lines.append(f"  {arch} step's GEMMs alone (same shapes, no other work): {f['gemms_only_gflops']:.1f} "
                                 f"GFLOP/s = {100 * f['gemms_only_vs_matmul']:.0f}% of the {n}^2 matmul; the step "
                                 f"runs at {100 * f['step_vs_gemms_only']:.0f}% of its GEMMs' rate")
    if "pipeline" in results:
        p = results["pipeline"]
        other = "in_step" if p["vae_run_uses"] == "separate_program" else "separate_program"
        lines.append(f"pipeline: epoch of {p['steps_per_epoch']} steps, batch {p['vae_run_uses']} (as vae.run here) "
                     f"{p['epoch_s'] * 1e3:.1f} ms vs fixed batch {p['fixed_batch_s'] * 1e3:.1f} ms -> overhead "
                     f"{p['overhead_pct']:.1f}% ({other}: {p['overhead_pct_by_form'][other]:.1f}%)")
    if "iwae" in results:
        i = results["iwae"]
        if "error" in i:
            lines.append(f"iwae: failed: {i['error'][-300:]}")
        else:
            during = i.get("peak_rss_during_iwae_mib")
            lines.append(f"iwae k={i['k']} on {i['num_images']} images: {i['seconds']:.1f} s, peak RSS of the child "
                         f"{i['peak_rss_mib']:.0f} MiB (RSS before the IWAE call {i['rss_before_iwae_mib']:.0f} MiB"
                         + (f", peak during it {during:.0f} MiB)" if during else ")")
                         + (f", device peak {i['device_peak_mib']:.0f} MiB" if i.get("device_peak_mib") else ""))
    if "compile" in results:
        c = results["compile"]
        lines.append(f"compile: train step compiled {c['train_step_backend_compiles']}x "
                     f"(jit cache size {c['train_step_cache_size']}) in a {c['run_steps']}-step vae.run.train run, "
                     f"{c['train_step_backend_compile_s']:.2f} s backend compile, first step incl. trace+compile "
                     f"{c['first_step_s_incl_compile']:.2f} s")
    lines.append(f"total benchmark time {results['total_s']:.0f} s")
    return "\n".join(lines)
