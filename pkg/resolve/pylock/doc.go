// Package pylock reads the files Python projects ship instead of a
// requirements.txt: pyproject.toml (PEP 621 dependencies, optional
// dependencies and PEP 735 dependency groups) and the lock files
// pylock.toml (PEP 751), uv.lock and poetry.lock.
//
// A lock is installed as pinned: Lock.Install walks it for a target
// interpreter (its marker environment and wheel tags) and returns, for each
// package the target needs, the wheel that fits it best with the lock's
// SHA-256. Nothing is resolved and nothing is fetched; a lock that does
// not cover the target (its Python, or a package with no fitting wheel)
// fails with a *CoverageError naming what is missing.
//
// Which parser reads a file is chosen by its name (see KindOf).
package pylock
