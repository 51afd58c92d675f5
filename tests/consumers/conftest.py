"""The consumer suite: the service checked through the outside tools its users run (pandas, a
spreadsheet program, feed and calendar parsers, Standard Webhooks and JSON Schema libraries,
OpenAPI linters and a generated client), each pinned and installed by the project's own files.
A missing tool is a failure, never a skip."""
