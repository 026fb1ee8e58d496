#!/usr/bin/env python3
"""Capacity benchmark: how many cameras one machine sustains.

`citywatch serve-samples` serves the sample footage transcoded up to 1080p25 and 720p25
(keyframe every 2 s, as city cameras send) on loopback. `citywatch run` (release build) pulls
N streams of it. Every camera watches what a city camera watches: one no-parking zone with an
abandoned-vehicle rule, over the footage's car park (the top right, about a tenth of the
frame). N grows until analysis falls behind its schedule: a camera is behind when, over the
last minute of the run, fewer than 90% of its due frames reached analysis, or any frame was
dropped. For each setting it prints the largest N sustained, cameras per core, and CPU and
peak RSS per camera at that N.

The first two settings are the headline, measured in the same run: the software as it was
(TensorFlow's whole graph, whole-frame gating and detection) and as it ships (the network
with Rust post-processing and zone-aware gating).

    python3 benches/capacity.py                 # every setting
    python3 benches/capacity.py --quick         # the two headline settings; shorter steps
    python3 benches/capacity.py --setting 1     # one row of the settings table
Results go to target/bench-data/capacity/results.json; the script prints where.
"""

import argparse
import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
BIN = REPO / "target" / "release" / "citywatch"
DATA = REPO / "target" / "bench-data" / "capacity"


def transcode(height: int) -> Path:
    """The sample footage at `height`p25, keyframe every 50 frames."""
    width = height * 16 // 9
    folder = DATA / f"{height}p"
    out = folder / "vtest.mp4"
    if out.exists():
        return folder
    folder.mkdir(parents=True, exist_ok=True)
    src = REPO / "sample-videos" / "vtest.mp4"
    subprocess.run(
        [
            "gst-launch-1.0", "-q", "filesrc", f"location={src}", "!", "qtdemux", "!",
            "h264parse", "!", "avdec_h264", "!", "videoconvert", "!", "videoscale", "!",
            "videorate", "!", f"video/x-raw,width={width},height={height},framerate=25/1",
            "!", "x264enc", "bframes=0", "key-int-max=50", "speed-preset=veryfast",
            f"bitrate={4000 if height >= 1080 else 2000}", "!",
            "video/x-h264,profile=main", "!", "h264parse", "!", "mp4mux", "!",
            "filesink", f"location={out}",
        ],
        check=True,
    )
    return folder


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def config(n: int, port: int, fps: float, keyframe_only: str, gate: bool, variant: str) -> str:
    model, scope, region = VARIANTS[variant]
    text = f"""[settings]
status_interval_s = 15

[detect]
models_dir = "{REPO / 'models'}"
model = "{model}"

[gate]
enabled = {'true' if gate else 'false'}
"""
    for i in range(n):
        text += f"""
[[cameras]]
id = "cam{i:03}"
url = "rtsp://127.0.0.1:{port}/vtest"
analysis_fps = {fps}
keyframe_only = "{keyframe_only}"
gate_scope = "{scope}"
detect_region = "{region}"

[[cameras.zones]]
id = "car_park"
kind = "no_parking"
polygon = [[0.78, 0.04], [1.0, 0.04], [1.0, 0.26], [0.78, 0.26]]

[[cameras.rules]]
rule = "abandoned_vehicle"
zones = ["car_park"]
dwell_s = 300
"""
    return text


# (model, gate_scope, detect_region) of each variant of the software.
VARIANTS = {
    "before": ("ssd_mobilenet_v2_coco_tf", "frame", "frame"),
    "now": ("ssd_mobilenet_v2_coco", "zones", "frame"),
}


def run_once(n, port, fps, kf, gate, variant, seconds):
    path = DATA / "run.toml"
    path.write_text(config(n, port, fps, kf, gate, variant))
    t0 = time.monotonic()
    with open(DATA / "run.stderr", "w") as err:
        proc = subprocess.Popen(
            [str(BIN), "run", "--status-json", "--for", str(seconds), str(path)],
            stdout=subprocess.PIPE,
            stderr=err,
            text=True,
            env={**os.environ, "CITYWATCH_LOG": "warn"},
        )
        stdout = proc.stdout.read()
        # This child's own usage (RUSAGE_CHILDREN would mix in earlier runs' peak RSS).
        _, status, usage = os.wait4(proc.pid, 0)
        proc.returncode = os.waitstatus_to_exitcode(status)
    wall = time.monotonic() - t0
    if proc.returncode != 0:
        sys.exit(f"citywatch run failed:\n{(DATA / 'run.stderr').read_text()[-2000:]}")
    last = {}
    for line in stdout.splitlines():
        try:
            v = json.loads(line)
        except ValueError:
            continue
        if "id" in v:
            last[v["id"]] = v
    due = 60 * fps
    behind = 0
    ran = reused = 0
    for v in last.values():
        a = v.get("analysis") or {}
        got = a.get("analysed_per_min", 0) + a.get("reused_per_min", 0)
        ran += a.get("inferences", 0)
        reused += a.get("reused", 0)
        if got < 0.9 * due or v.get("frames_dropped", 0) > 0:
            behind += 1
    cpu = usage.ru_utime + usage.ru_stime
    return {
        "cameras": n,
        "behind": behind,
        "detector_runs_share": ran / max(1, ran + reused),
        "cpu_s_per_camera_hour": cpu / wall * 3600 / n,
        "cores_used": cpu / wall,
        # ru_maxrss is in KiB on Linux.
        "peak_rss_mib": usage.ru_maxrss / 1024,
    }


def search(label, port, fps, kf, gate, variant, steps, seconds):
    best = None
    for n in steps:
        r = run_once(n, port, fps, kf, gate, variant, seconds)
        ok = r["behind"] == 0
        print(
            f"  {label}: {n:3} cameras: {'ok' if ok else str(r['behind']) + ' behind'}, "
            f"{r['cores_used']:.2f} cores, {r['cpu_s_per_camera_hour']:.0f} CPU-s per camera-hour, "
            f"peak RSS {r['peak_rss_mib']:.0f} MiB ({r['peak_rss_mib'] / n:.1f} per camera), "
            f"detector on {100 * r['detector_runs_share']:.0f}% of analysed frames",
            flush=True,
        )
        if not ok:
            break
        best = r
    return best


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true")
    ap.add_argument(
        "--setting", type=int, action="append",
        help="run only these settings (0-5, in the order of the table in main); repeatable",
    )
    args = ap.parse_args()
    if not BIN.exists():
        sys.exit("build first: cargo build --release")
    cores = os.cpu_count() or 1
    seconds = 75 if args.quick else 90
    settings = [
        # (resolution, frames/s, keyframe-only, gating, variant, N steps)
        (1080, 0.2, "on", True, "before", [32, 64, 80, 96, 112, 128]),
        (1080, 0.2, "on", True, "now", [64, 96, 112, 128, 144, 160, 192]),
        (720, 0.2, "on", True, "now", [96, 128, 192, 256, 320]),
        (1080, 0.2, "off", True, "now", [16, 24, 32, 48, 64]),
        (1080, 0.2, "on", False, "now", [32, 48, 64, 96, 128]),
        # At 1 frame/s the 2 s keyframe interval is too sparse for keyframe-only: "auto"
        # decodes every frame, as it would on such a camera.
        (1080, 1.0, "auto", True, "now", [4, 8, 12, 16, 24]),
        (720, 1.0, "auto", True, "now", [8, 16, 24, 32]),
    ]
    if args.setting:
        settings = [settings[i] for i in args.setting]
    elif args.quick:
        settings = settings[:2]
    results = []
    for height, fps, kf, gate, variant, steps in settings:
        folder = transcode(height)
        port = free_port()
        server = subprocess.Popen(
            [str(BIN), "serve-samples", "--dir", str(folder), "--port", str(port)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            for _ in range(100):
                with socket.socket() as s:
                    if s.connect_ex(("127.0.0.1", port)) == 0:
                        break
                time.sleep(0.1)
            label = f"{height}p, 1 frame/{1 / fps:.0f} s, keyframe-only {kf}, gating {'on' if gate else 'off'}, {variant}"
            best = search(label, port, fps, kf, gate, variant, steps, seconds)
        finally:
            server.terminate()
            server.wait()
        row = {
            "resolution": f"{height}p25",
            "analysis_fps": fps,
            "keyframe_only": kf,
            "gating": gate,
            "variant": variant,
            "model": VARIANTS[variant][0],
            "sustained": best["cameras"] if best else 0,
            "cameras_per_core": (best["cameras"] / cores) if best else 0,
            "at_sustained": best,
        }
        results.append(row)
        print(f"{label}: sustained {row['sustained']} cameras ({row['cameras_per_core']:.1f} per core)\n", flush=True)
    DATA.mkdir(parents=True, exist_ok=True)
    out = DATA / "results.json"
    out.write_text(json.dumps({"cores": cores, "results": results}, indent=2))
    print(f"capacity: results written to {out}")


if __name__ == "__main__":
    main()
