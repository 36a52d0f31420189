// Package pypi resolves Python requirements to pinned wheels the way
// `pip install` into a virtualenv would, without running Python: it reads
// PEP 503 (HTML) and PEP 691 (JSON) simple indexes, PEP 658 metadata,
// pip's requirements.txt format, and runs a backtracking resolver for a
// target interpreter described by a pep508.Environment and a
// wheeltag.Target (the image's interpreter, never the host's).
//
// Only wheels are installed: a version that has only a source distribution
// is skipped, and when that leaves nothing the error says so.
//
// Unlike pip, which merges every index, a project found on an earlier index
// is never looked up on a later one, so that a public index cannot shadow a
// private project (dependency confusion).
//
// Credentials (user:password in an index URL, or ~/.netrc) are sent as HTTP
// basic auth and never appear in errors: every URL in a message goes
// through auth.RedactURL, and URLs in results have their credentials removed.
package pypi
