# The two commands of the README, and a few helpers.
#
#   make serve   build everything and serve examples/hello on http://127.0.0.1:7878
#   make test    install the guest toolchain if needed, then run the whole test suite

CARGO ?= cargo
export CARGO_TARGET_DIR ?= $(CURDIR)/target

.PHONY: serve test guest-toolchain check fmt clippy bench

guest-toolchain:
	bash scripts/install-guest-toolchain.sh

serve: guest-toolchain
	$(CARGO) build --release -p verge-cli
	$(CARGO_TARGET_DIR)/release/verge serve examples/hello

test: guest-toolchain
	$(CARGO) test --workspace --all-targets

fmt:
	$(CARGO) fmt --all -- --check

clippy:
	$(CARGO) clippy --workspace --all-targets -- -D warnings

check: fmt clippy test

bench: guest-toolchain
	bash bench/run.sh
