# seller-backend front door: thin targets over `cargo xtask` (the real logic lives in xtask/).
# The cargo target directory is cached outside the checkout so repeated builds and CI runs are quick.
# run, test, bench, chaos and services first install what they need when it is missing (`make bootstrap` alone
# installs everything): a fresh machine needs only Rust.
export CARGO_TARGET_DIR ?= $(HOME)/.cache/seller-backend/target

.DEFAULT_GOAL := help
.PHONY: help run test lint bench chaos services bootstrap build fmt

help: ## List the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk 'BEGIN {FS = ":.*## "} {printf "  make %-9s %s\n", $$1, $$2}'

run: ## The whole system locally against the Shopee sandbox (Ctrl-C stops it all)
	cargo xtask run

test: ## fmt + clippy -D warnings + every test + the short chaos profile, starting what the tests need
	cargo xtask test

lint: ## fmt check + clippy -D warnings + no unused dependency (cargo-machete) + deny.toml (licenses, bans, sources)
	cargo xtask lint

bench: ## Benchmarks (release builds), printed and written to docs/benchmarks.md
	cargo run --release --quiet --package xtask -- bench

chaos: ## The reliability scenarios, full profile (quality-bar.md sizes; stops PostgreSQL and Redis for real)
	cargo xtask chaos --full

services: ## Start what the tests need and leave it running
	cargo xtask services

bootstrap: ## Install everything the other targets need (apt packages, tansu, cargo-nextest); they do it too
	cargo xtask bootstrap

build: ## Release build of the five deployable binaries (no database needed)
	cargo xtask dist

fmt: ## Format the code
	cargo fmt --all
