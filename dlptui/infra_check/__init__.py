"""`dlptui infra check`: offline validation of infra/ (a repository tool, not a backend)."""
