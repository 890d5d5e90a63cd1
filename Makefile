# The two commands of the README: `make up` runs the portal, `make test` runs every test.
.PHONY: up test bootstrap lint format

up: bootstrap
	.venv/bin/python -m tools.up

test: bootstrap
	tools/kube_sandbox/build.sh
	tools/external_dns/build.sh
	tools/oidc_provider/install.sh
	tools/helm/build.sh
	.venv/bin/ruff check .
	.venv/bin/ruff format --check .
	.venv/bin/python -m pytest

bootstrap:
	@scripts/bootstrap.sh

lint: bootstrap
	.venv/bin/ruff check .
	.venv/bin/ruff format --check .

format: bootstrap
	.venv/bin/ruff format .
	.venv/bin/ruff check --fix .
