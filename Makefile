# Thin wrappers: ./cx is the entry point (it builds .venv from requirements.lock on first use).
.PHONY: bench demo test
SCALE ?= S
REPEAT ?= 3
ARGS ?=

bench:
	./cx bench --scale $(SCALE) --repeat $(REPEAT) $(ARGS)

demo:
	./cx demo --scale $(SCALE) $(ARGS)

test:
	./cx test $(ARGS)
