# citywatch: the two set-up commands are `make demo` and `make test`; both install what is
# missing first (scripts/deps.sh is idempotent).

SHELL := /bin/bash
CARGO ?= cargo
export CARGO_BUILD_JOBS ?= 2
DEMO_PORT ?= 8554
DEMO_SECONDS ?= 600

.PHONY: bench-volume bench-plates deps build demo test lint bench bench-capacity eval clean-demo

deps:
	./scripts/deps.sh

build: deps
	$(CARGO) build --locked

# Serves the sample footage over RTSP on loopback, runs the demo pipeline against it for
# DEMO_SECONDS (Ctrl-C stops it sooner) with the review UI on http://127.0.0.1:8080 and a
# demo operator account, prints camera health as it goes, then stops both.
demo: build
	./scripts/demo.sh $(DEMO_PORT) $(DEMO_SECONDS)

# The whole test suite: unit tests, then integration tests against real GStreamer and a real
# RTSP server on loopback.
test: deps
	./scripts/test.sh

lint:
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --locked --workspace --all-targets -- -D warnings

# Cameras sustained per core: the software before and after the issue-17 work at the headline
# setting (1080p, 1 frame per 5 s) in one run, then 720p, 1 frame per second, keyframe-only and
# gating off (benches/capacity.py; several minutes per setting). It prints where it wrote.
bench-capacity: deps
	$(CARGO) build --locked --release
	python3 benches/capacity.py

# A year's volume: a million captures in SQLite (and PostgreSQL with CITYWATCH_BENCH_POSTGRES),
# every page and API call timed (crates/web/benches/volume.rs).
bench-volume: deps
	$(CARGO) bench --locked -p citywatch-web --bench volume

# Scores the demo pipeline on the hand-written truth of the sample footage (against the
# pedestrian model), and the scenario pipeline on the scenario clips: target/eval/*/report.html.
eval: deps
	$(CARGO) build --locked --release
	./target/release/citywatch eval --pipeline pipelines/demo.toml \
	  --truth sample-videos/truth/vtest.json --truth sample-videos/truth/bikes.json \
	  --compare-model ssdlite_mobilenet_v2_pedestrian --out target/eval/samples
	./target/release/citywatch eval --pipeline tests/scenarios/pipeline.toml \
	  $(foreach s,vehicle vendor vendor_far bin dusk dusk_litter brief_stops swap fixture view_shift early_stall two_stalls bin_person bin_emptied unlabelled_stall plate_dusk plate_swap,--truth tests/scenarios/$(s).json) \
	  --out target/eval/scenarios
	./target/release/citywatch eval --pipeline tests/scenarios/pipeline.toml --review \
	  $(foreach s,vehicle vendor vendor_far bin dusk dusk_litter brief_stops swap fixture view_shift early_stall two_stalls bin_person bin_emptied unlabelled_stall plate_dusk plate_swap visit_1 visit_2,--truth tests/scenarios/$(s).json) \
	  --out target/eval/review

# Plate reading: one 1080p keyframe decoded whole, and one read by the PP-OCRv4 reader.
bench-plates: deps
	$(CARGO) bench --locked --bench plates

# Decode cost, full against keyframe-only (benches/decode.rs); detection cost per model,
# against Python onnxruntime as a peer (benches/detect.rs); filing latency under a burst of
# 100 captures, fired to committed and to webhook delivered (benches/filing.rs).
bench: deps
	./scripts/bench-venv.sh
	mkdir -p target/bench-data
	set -o pipefail; { $(CARGO) bench --locked --bench decode && \
	  $(CARGO) bench --locked --bench detect && \
	  $(CARGO) bench --locked --bench filing; } 2>&1 | tee target/bench-data/bench.txt
	@echo 'bench: the figures are in target/bench-data/bench.txt; record them in docs/benchmarks.md'
