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
(TensorFlow's whole graph, whole-frame gating and detection, rtpbin's jitter buffer on TCP)
and as it ships (the network with Rust post-processing, zone-aware gating, packets stamped
on the reading thread).

    python3 benches/capacity.py                 # every setting
    python3 benches/capacity.py --quick         # the two headline settings; shorter steps
    python3 benches/capacity.py --setting 1     # one row of the settings table
    python3 benches/capacity.py --floor         # only the stream floor (below)
    python3 benches/capacity.py --looks         # the headline without and with closer looks
    python3 benches/capacity.py --plates        # the headline without and with plate reads
    python3 benches/capacity.py --overload 80   # 80 and 120 cameras, shedding off and on

The stream floor: what receiving the streams costs before any decoding or detection. N RTSP
streams over TCP through the same GStreamer elements a camera's pipeline starts with (rtspsrc
with its jitter buffer, rtph264depay, h264parse) into a fakesink, in one gst-launch-1.0
process; the server's CPU is measured alongside. Cores divided by the floor is a ceiling no
detector or gate can lift.
Results go to target/bench-data/capacity/results.json; the script prints where.
"""

import argparse
import contextlib
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


# Extra `[detect]` lines from --detect (to try other settings than the defaults).
DETECT_EXTRA: list = []


def config(n: int, port: int, fps: float, keyframe_only: str, gate: bool, variant: str) -> str:
    model, scope, region, jitter_buffer, crops = VARIANTS[variant]
    crops_line = f"detect_crops = {crops}\n" if crops is not None else ""
    extra = "".join(f"{line}\n" for line in DETECT_EXTRA)
    # The car park's van and car stand through the run: with plates on (the default) each
    # camera reads them from 60 s on.
    if variant == "no_plates":
        extra += "\n[detect.plates]\nenabled = false\n"
    text = f"""[settings]
status_interval_s = 15

[detect]
models_dir = "{REPO / 'models'}"
model = "{model}"
{extra}
[gate]
enabled = {'true' if gate else 'false'}

[ingest]
tcp_jitter_buffer = {'true' if jitter_buffer else 'false'}
shed = {'false' if variant == 'no_shed' else 'true'}
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
{crops_line}
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


# (model, gate_scope, detect_region, [ingest] tcp_jitter_buffer, detect_crops) of each
# variant of the software: before issue 17, as it ships, and as it ships without the
# automatic closer looks of issue 25 (`detect_crops = []`; the car park gets one look).
VARIANTS = {
    "before": ("ssd_mobilenet_v2_coco_tf", "frame", "frame", True, None),
    "now": ("ssd_mobilenet_v2_coco", "zones", "frame", False, None),
    "no_looks": ("ssd_mobilenet_v2_coco", "zones", "frame", False, "[]"),
    # As it ships with the plate reader turned off (issue 29's "before").
    "no_plates": ("ssd_mobilenet_v2_coco", "zones", "frame", False, None),
    # As it ships with fair shedding turned off (issue 27's "before").
    "no_shed": ("ssd_mobilenet_v2_coco", "zones", "frame", False, None),
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
        # Kept for a look at why cameras fell behind.
        (DATA / "run.stdout").write_text(stdout)
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
    ran = reused = plate_reads = dropped = shed = degraded = 0
    per_camera = []
    for v in last.values():
        a = v.get("analysis") or {}
        plate_reads += a.get("plate_reads", 0)
        got = a.get("analysed_per_min", 0) + a.get("reused_per_min", 0)
        per_camera.append(got)
        ran += a.get("inferences", 0)
        reused += a.get("reused", 0)
        dropped += v.get("frames_dropped", 0)
        shed += v.get("frames_shed", 0)
        degraded += bool(v.get("degraded"))
        if got < 0.9 * due or v.get("frames_dropped", 0) > 0:
            behind += 1
    per_camera.sort()
    per_camera += [0] * (n - len(per_camera))
    cpu = usage.ru_utime + usage.ru_stime
    return {
        "cameras": n,
        "behind": behind,
        "detector_runs_share": ran / max(1, ran + reused),
        "cpu_s_per_camera_hour": cpu / wall * 3600 / n,
        "cores_used": cpu / wall,
        "plate_reads": plate_reads,
        # Frames that reached analysis in the last minute, all cameras together, and the
        # worst camera's and the median camera's.
        "analysed_last_min": sum(per_camera),
        "worst_camera_last_min": per_camera[0] if per_camera else 0,
        "median_camera_last_min": per_camera[len(per_camera) // 2] if per_camera else 0,
        "frames_dropped": dropped,
        "frames_shed": shed,
        "degraded": degraded,
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
            f"detector on {100 * r['detector_runs_share']:.0f}% of analysed frames, "
            f"{r['plate_reads']} plate reads",
            flush=True,
        )
        if not ok:
            break
        best = r
    return best


def overload(n: int, seconds: float):
    """The headline setting at N cameras (sustained) and at 1.5 N, without and with fair
    shedding: the frames analysed in the last minute, all cameras together and per camera."""
    rows = []
    with serving(1080) as (port, _):
        for variant in ["no_shed", "now"]:
            for cams in [n, round(1.5 * n)]:
                r = run_once(cams, port, 0.2, "on", True, variant, seconds)
                r["variant"] = variant
                rows.append(r)
                print(
                    f"  {variant}: {cams:3} cameras: {r['analysed_last_min']} frames analysed in the "
                    f"last minute (worst camera {r['worst_camera_last_min']}, median "
                    f"{r['median_camera_last_min']}), {r['behind']} behind, "
                    f"{r['frames_dropped']} dropped, {r['frames_shed']} shed, "
                    f"{r['degraded']} degraded, {r['cores_used']:.2f} cores",
                    flush=True,
                )
    out = DATA / "overload.json"
    out.write_text(json.dumps({"cores": os.cpu_count(), "runs": rows}, indent=2))
    print(f"capacity: overload results written to {out}")


def cpu_ticks(pid: int) -> int:
    """utime + stime of a process so far, in clock ticks."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return int(fields[11]) + int(fields[12])


def stream_floor(port: int, server_pid: int, n: int, seconds: float) -> dict:
    """CPU of receiving n streams (RTP in to the parser's output, nothing decoded)."""
    chain = []
    for _ in range(n):
        chain += [
            "rtspsrc", f"location=rtsp://127.0.0.1:{port}/vtest", "protocols=tcp", "latency=200",
            "!", "rtph264depay", "!", "h264parse", "!", "fakesink", "sync=false",
        ]
    proc = subprocess.Popen(
        ["gst-launch-1.0", "-q", *chain], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    try:
        # Let every stream's RTSP set-up finish before measuring.
        time.sleep(10)
        hz = os.sysconf("SC_CLK_TCK")
        c0, s0, t0 = cpu_ticks(proc.pid), cpu_ticks(server_pid), time.monotonic()
        time.sleep(seconds)
        c1, s1, t1 = cpu_ticks(proc.pid), cpu_ticks(server_pid), time.monotonic()
        if proc.poll() is not None:
            sys.exit("stream floor: gst-launch-1.0 exited early")
    finally:
        proc.terminate()
        proc.wait()
    wall = t1 - t0
    client = (c1 - c0) / hz / wall
    server = (s1 - s0) / hz / wall
    return {
        "cameras": n,
        "receive_cores": client,
        "receive_cores_per_camera": client / n,
        "server_cores": server,
        "server_cores_per_camera": server / n,
    }


@contextlib.contextmanager
def serving(height: int):
    """`serve-samples` on a free loopback port with the footage at `height`p: (port, pid)."""
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
        yield port, server.pid
    finally:
        server.terminate()
        server.wait()


def floor_rows(cores: int, seconds: float) -> list:
    rows = []
    for height in (1080, 720):
        with serving(height) as (port, server_pid):
            for n in (64, 128):
                r = stream_floor(port, server_pid, n, seconds)
                r["resolution"] = f"{height}p25"
                per = r["receive_cores_per_camera"]
                # The ceiling if decoding and detection cost nothing and nothing else ran:
                # every core spent on receiving (the server elsewhere).
                r["ceiling_cameras"] = int(cores / per)
                print(
                    f"  stream floor, {height}p, {n} streams: receiving {r['receive_cores']:.2f} cores "
                    f"({1000 * per:.2f} millicores per camera), serving {r['server_cores']:.2f} cores; "
                    f"ceiling with free decoding and detection: {r['ceiling_cameras']} cameras",
                    flush=True,
                )
                rows.append(r)
    return rows


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true")
    ap.add_argument(
        "--setting", type=int, action="append",
        help="run only these settings (0-6, in the order of the table in main); repeatable",
    )
    ap.add_argument("--floor", action="store_true", help="measure only the stream floor")
    ap.add_argument(
        "--looks", action="store_true",
        help="the headline setting without and with the automatic closer looks, in one run",
    )
    ap.add_argument(
        "--plates", action="store_true",
        help="the headline setting without and with plate reads, in one run",
    )
    ap.add_argument(
        "--overload", type=int, metavar="N",
        help="fair shedding: N cameras and 1.5 N, with shedding off and on, in one run",
    )
    ap.add_argument(
        "--detect", action="append", default=[], metavar="LINE",
        help='an extra [detect] line for every run, e.g. --detect "intra_threads = 1"; repeatable',
    )
    ap.add_argument(
        "--cameras", type=int, action="append",
        help="try only these camera counts (instead of each setting's steps); repeatable",
    )
    args = ap.parse_args()
    DETECT_EXTRA.extend(args.detect)
    if not BIN.exists():
        sys.exit("build first: cargo build --release")
    cores = os.cpu_count() or 1
    seconds = 75 if args.quick else 90
    DATA.mkdir(parents=True, exist_ok=True)
    if args.overload:
        # Longer runs: the last minute then starts well after the cameras connected.
        overload(args.overload, 150)
        return
    if args.floor:
        rows = floor_rows(cores, 40)
        out = DATA / "floor.json"
        out.write_text(json.dumps({"cores": cores, "floor": rows}, indent=2))
        print(f"capacity: stream floor written to {out}")
        return
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
    if args.looks:
        settings = [
            (1080, 0.2, "on", True, "now", [112, 128, 144]),
            (1080, 0.2, "on", True, "no_looks", [112, 128, 144]),
            (1080, 0.2, "on", True, "now", [112, 128, 144]),
        ]
    elif args.plates:
        settings = [
            (1080, 0.2, "on", True, "no_plates", [80, 96, 112]),
            (1080, 0.2, "on", True, "now", [80, 96, 112]),
        ]
    elif args.setting:
        settings = [settings[i] for i in args.setting]
    elif args.quick:
        settings = settings[:2]
    results = []
    for height, fps, kf, gate, variant, steps in settings:
        steps = args.cameras or steps
        with serving(height) as (port, _):
            label = f"{height}p, 1 frame/{1 / fps:.0f} s, keyframe-only {kf}, gating {'on' if gate else 'off'}, {variant}"
            best = search(label, port, fps, kf, gate, variant, steps, seconds)
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
    floor = [] if (args.quick or args.setting or args.looks or args.plates) else floor_rows(cores, 40)
    out = DATA / "results.json"
    out.write_text(json.dumps({"cores": cores, "results": results, "floor": floor}, indent=2))
    print(f"capacity: results written to {out}")


if __name__ == "__main__":
    main()
