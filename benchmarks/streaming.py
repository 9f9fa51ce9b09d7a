"""The streaming input (`vae prepare` + data.name=DEST) against the same data held in memory.

    python -m benchmarks.streaming [--quick] [--repeats R] [--steps S] [--out benchmarks/results_streaming.json]

Two datasets, each written here as an .npz (uint8) and prepared as array_record:
  * mnist5k (4,000 train / 1,000 test digits, 28 x 28): the quickstart's MLP VAE, where a step
    takes a few milliseconds and any input overhead shows;
  * a synthetic set of 20,000 random 64 x 64 x 3 images (236 MiB as uint8, 943 MiB as the float32
    the in-memory path holds), 200 held out, the same MLP shape on 12,288 inputs.
Each (dataset, input) trains S steps of batch 128 in its own child process (`vae.run.train`), the
two inputs interleaved and their order rotated every repeat; a child reports the run's
train_steps_per_s (summary.json: timed steps after compilation, evaluation excluded) and its
peak resident memory (VmHWM). Reported: medians over repeats, the paired stream / memory
throughput ratio and the pipeline overhead 1 - ratio. Prints a table and writes JSON.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile

import numpy as np

from vae.data import FileOptions, load
from vae.data.prepare import prepare_dataset

CHILD = """
import json, sys
from vae.config import Config
from vae.run import train
summary = train(Config().replace(**json.loads(sys.argv[1])), sys.argv[2])
hwm = [line for line in open("/proc/self/status") if line.startswith("VmHWM:")][0]
print(json.dumps({"steps_per_s": summary["train_steps_per_s"], "peak_rss_mib": int(hwm.split()[1]) / 1024}))
"""


def _datasets(root: str, quick: bool) -> dict:
    """{name: (the in-memory run's data options, the prepared dataset's folder)}, written under root."""
    out = {}
    parts = {}
    for split in ("train", "test"):
        ds = load("mnist5k", split if not quick else f"{split}[:512]")
        parts[split] = os.path.join(root, f"mnist5k_{split}.npz")
        np.savez(parts[split], images=np.round(ds.images * 255).astype(np.uint8), labels=ds.labels)
    prepared = os.path.join(root, "mnist5k_prepared")
    prepare_dataset(parts["train"], prepared, FileOptions(test_path=parts["test"]))
    out["mnist5k 28x28x1"] = ({"data.name": parts["train"], "data.test_path": parts["test"]}, prepared)
    n = 2000 if quick else 20000
    npy = os.path.join(root, "synthetic.npy")
    np.save(npy, np.random.default_rng(0).integers(0, 256, (n, 64, 64, 3), dtype=np.uint8))
    prepared = os.path.join(root, "synthetic_prepared")
    prepare_dataset(npy, prepared, FileOptions(test_fraction=200 / n))
    out[f"synthetic {n // 1000}k 64x64x3"] = ({"data.name": npy, "data.test_fraction": 200 / n}, prepared)
    return out


def _child(data: dict, out: str, steps: int) -> dict:
    overrides = {**data, "train.steps": steps, "train.eval_every": steps, "train.batch_size": 128,
                 "train.final_iwae_samples": 0, "train.num_samples": 4, "train.progress": False,
                 "train.loggers": ["jsonl"], "train.keep_checkpoints": 1}
    proc = subprocess.run([sys.executable, "-c", CHILD, json.dumps(overrides), out], capture_output=True, text=True)
    if proc.returncode:
        raise RuntimeError(proc.stderr[-3000:])
    return json.loads(proc.stdout.strip().splitlines()[-1])


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="small data, few steps, one repeat (a smoke test)")
    parser.add_argument("--repeats", type=int, default=None)
    parser.add_argument("--steps", type=int, default=None)
    parser.add_argument("--out", default="benchmarks/results_streaming.json")
    args = parser.parse_args(argv)
    repeats = args.repeats or (1 if args.quick else 3)
    steps = args.steps or (20 if args.quick else 400)
    results = {}
    with tempfile.TemporaryDirectory() as root:
        for label, (memory, prepared) in _datasets(root, args.quick).items():
            runs = {"memory": [], "stream": []}
            for r in range(repeats):
                order = ("memory", "stream") if r % 2 == 0 else ("stream", "memory")
                for form in order:
                    out = os.path.join(root, f"run_{form}_{r}_{len(results)}")
                    runs[form].append(_child(memory if form == "memory" else {"data.name": prepared}, out, steps))
            ratios = [s["steps_per_s"] / m["steps_per_s"] for s, m in zip(runs["stream"], runs["memory"])]
            results[label] = {
                form: {"steps_per_s": statistics.median(x["steps_per_s"] for x in runs[form]),
                       "peak_rss_mib": statistics.median(x["peak_rss_mib"] for x in runs[form])} for form in runs}
            results[label].update(stream_over_memory=statistics.median(ratios),
                                  overhead_pct=100 * (1 - statistics.median(ratios)), repeats=repeats, steps=steps)
    header = "| data | in memory: steps/s, peak MiB | streamed: steps/s, peak MiB | stream / memory | overhead |"
    lines = [header, "|---|---|---|---|---|"]
    for label, r in results.items():
        m, s = r["memory"], r["stream"]
        lines.append(f"| {label} | {m['steps_per_s']:.1f}, {m['peak_rss_mib']:.0f} | {s['steps_per_s']:.1f}, "
                     f"{s['peak_rss_mib']:.0f} | {r['stream_over_memory']:.3f} | {r['overhead_pct']:.1f}% |")
    print("\n".join(lines))
    os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
    with open(args.out, "w") as f:
        json.dump({"results": results, "quick": args.quick, "how": __doc__.strip().splitlines()[0]}, f, indent=2)
    return results


if __name__ == "__main__":
    main()
