"""No tracked file holds a credential: private keys, service-account JSON, cloud keys, tokens,
or a literal password in a configuration file. The scanner is tested on planted secrets
first, so a scan that finds nothing means something.

A value that is plainly a placeholder is allowed: empty, `${VAR}` / `$VAR`, `<your password>`,
`...`, `changeme`, `xxxx`, `***`. Patterns that would match this file are built at run time.
"""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

# Anywhere in any text file.
ANYWHERE = {
    "private key": re.compile("-----BEGIN (?:[A-Z]+ )*PRIVATE KEY(?: BLOCK)?-----"),
    "GCP service-account key": re.compile(r'"private_key"\s*:\s*"-----BEGIN|"type"\s*:\s*"service_account"[^}]*"private_key_id"\s*:\s*"[0-9a-f]{16,}', re.S),
    "AWS access key id": re.compile(r"\b(?:AKIA|ASIA)[0-9A-Z]{16}\b"),
    "AWS secret access key": re.compile(r"aws_secret_access_key\s*[=:]\s*['\"]?[A-Za-z0-9/+=]{40}\b", re.I),
    "Google API key": re.compile(r"\bAIza[0-9A-Za-z_-]{35}\b"),
    "GitHub token": re.compile(r"\b(?:gh[pousr]_[A-Za-z0-9]{36,}|github_pat_[A-Za-z0-9_]{60,})\b"),
    "Slack token": re.compile(r"\bxox[abprs]-[A-Za-z0-9-]{10,}"),
    "credentials in a URL": re.compile(r"\b[a-z][a-z0-9+.-]*://[^\s/:@'\"]+:[^\s/@'\"$<{]{3,}@[\w.-]+", re.I),
}

# In configuration, scripts and docs: a credential-named key assigned a literal.
CONFIG_SUFFIXES = {".yaml", ".yml", ".toml", ".env", ".ini", ".cfg", ".conf", ".json", ".properties",
                   ".template", ".tmpl", ".md", ".sh", ".txt"}
CONFIG_NAMES = {"Dockerfile", "Makefile", ".env"}
ASSIGNMENT = re.compile(
    r"""(?P<key>[A-Za-z0-9_.-]*?(?:password|passwd|_pass|passphrase|token|secret|api_?key|apikey|private_?key|access_?key|license_?key|client_?secret))
        ["']?\s*(?::|=)\s*(?P<value>"[^"]*"|'[^']*'|[^\s#,}]*)""",
    re.I | re.X,
)
PLACEHOLDER = re.compile(
    r"""^(?:|""|''|\$\{[^}]*\}|\$[A-Za-z_]\w*|\$\(.*|<[^>]*>|\.\.\.|…|\*+|x{3,}|changeme|change-me|
        replace[-_]?me|placeholder|example|none|null|~|true|false|\{|\[|\(|[A-Za-z_][\w.]*\(.*|
        %[a-z]|[A-Z][A-Z0-9]*(?:_[A-Z0-9]+)+)$""",
    re.I | re.X,
)


# Keys that name a Secret object or a key inside one, not a credential.
REFERENCE_KEY = re.compile(r"(existing_?secret|credentials_?secret|storage_?secret|secret_?name|secret_?ref|secret_?key_?ref|tls_?secret)$", re.I)


def config_lines(path: Path, text: str):
    """(number, line) of the lines where an assignment could hold a credential: all of a
    config file, a script's non-comment lines, a Markdown file's fenced code blocks."""
    fenced = False
    for number, line in enumerate(text.splitlines(), 1):
        if path.suffix == ".md":
            if line.lstrip().startswith("```"):
                fenced = not fenced
                continue
            if not fenced:
                continue
        if path.suffix == ".sh" and line.lstrip().startswith("#"):
            continue
        yield number, line


def is_config(path: Path) -> bool:
    return path.suffix in CONFIG_SUFFIXES or path.name in CONFIG_NAMES or path.name.endswith(".env.template")


def scan_text(path: Path, text: str) -> list[str]:
    """`file:line: what` for every credential found in `text`."""
    found = []
    for what, pattern in ANYWHERE.items():
        for m in pattern.finditer(text):
            found.append(f"{path}:{text.count(chr(10), 0, m.start()) + 1}: {what}")
    if is_config(path):
        for number, line in config_lines(path, text):
            for m in ASSIGNMENT.finditer(line):
                if REFERENCE_KEY.search(m["key"]):
                    continue
                value = m["value"].strip().strip("\"'()")
                if not PLACEHOLDER.match(value) and not PLACEHOLDER.match(m["value"].strip()):
                    found.append(f"{path}:{number}: {m['key']} holds a literal ({len(value)} characters)")
    return found


def tracked_files(root: Path) -> list[Path]:
    out = subprocess.run(["git", "ls-files", "-z"], cwd=root, capture_output=True, check=True).stdout
    return [root / name for name in out.decode().split("\0") if name]


def scan_repo(root: Path) -> list[str]:
    found = []
    for path in tracked_files(root):
        if not path.is_file() or path.stat().st_size > 5_000_000:
            continue
        data = path.read_bytes()
        if b"\0" in data:
            continue  # binary
        found += scan_text(path.relative_to(root), data.decode("utf-8", errors="replace"))
    return found


# --- the scanner finds what it must, and lets placeholders through -------------------------

BEGIN, END = "-----BEGIN ", "-----END "
PLANTED = {
    "key.pem": f"{BEGIN}RSA PRIVATE KEY-----\nMIIEowIBAAKCAQEA\n{END}RSA PRIVATE KEY-----\n",
    "openssh": f"{BEGIN}OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEAAAA\n",
    "service-account.json": '{\n  "type": "service_' + 'account",\n  "project_id": "p",\n  "private_key_id": "'
    + "0123456789abcdef" * 2 + '",\n  "private_key": "' + BEGIN + 'PRIVATE KEY-----\\nMIIE\\n"\n}\n',
    "aws.py": "KEY = '" + "AKIA" + "Z7Q4M2N8X5C1V3B6" + "'\n",
    "credentials.ini": "[default]\naws_secret_access_key = " + "wJalrXUtnFEMI/K7MDENG/bPxRfiCY" + "EXAMPLEKEY" + "\n",
    "values.yaml": "db:\n  user: postgres\n  password: " + "hunter2hunter2" + "\n",
    "nested.yml": "global:\n  postgresql:\n    postgresqlPassword: '" + "s3cr3t-pw" + "'\n",
    "secrets.env": "DET_PASS=" + "correct-horse" + "\n",
    "config.toml": '[profiles.cluster]\npachd_token = "' + "abc123def456" + '"\n',
    "README.md": "Log in with `det user login admin` and\n\n```\nDET_PASS=" + "Tr0ub4dor" + " det e list\n```\n",
    "url.sh": "curl https://admin:" + "opensesame" + "@example.com/api\n",
    "gh.txt": "token " + "ghp_" + "a" * 36 + "\n",
}
PLACEHOLDERS = {
    "values.yaml": 'password: ""\npostgresqlPassword: \nrootTokenSecretName: pachyderm-enterprise\n'
    "postgresqlExistingSecretKey: postgresql-password\n",
    "secrets.env.template": "PACHYDERM_DB_PASSWORD=\nDET_PASS=\nDET_USER=admin\n",
    "docs.md": 'The token: is prose, not code.\n```\nexport DET_PASS="<your password>"\nDET_PASS="${DET_PASS:?}"\npassword: ...\ntoken: $PACHD_TOKEN\n'
    "api_key: changeme\npassword=$(pass show dlp/det)\nexistingSecret: pachyderm-postgres\n```\n",
    "script.sh": "# Nothing here holds a secret: values come from the environment\n"
    "SECRETS=(\"pachyderm pachyderm-postgres postgresql-password=PACHYDERM_DB_PASSWORD\")\n"
    "printf 'password: %s' \"$DET_PASS\"\n",
    "code.py": 'password = os.environ["DET_PASS"]\ntoken = "not scanned in code"\n',
    "gateway.yaml": "secretName: tls-cert\ncredentialName: ingress-cert\n",
    "config.toml": "storage_secret = \"dlptui-storage-reader\"\nkube_context = \"gke_p_z_dlp\"\n",
}


@pytest.mark.parametrize("name", sorted(PLANTED))
def test_the_scanner_finds_a_planted_secret(name: str) -> None:
    assert scan_text(Path(name), PLANTED[name]), f"the scanner missed the secret planted in {name}"


@pytest.mark.parametrize("name", sorted(PLACEHOLDERS))
def test_the_scanner_lets_placeholders_through(name: str) -> None:
    assert scan_text(Path(name), PLACEHOLDERS[name]) == []


def test_a_finding_names_the_line_but_never_the_value() -> None:
    [finding] = scan_text(Path("values.yaml"), PLANTED["values.yaml"])
    assert finding.startswith("values.yaml:3: password holds a literal")
    assert "hunter2" not in finding


def test_scan_repo_reads_tracked_files_only(tmp_path: Path) -> None:
    subprocess.run(["git", "init", "-q"], cwd=tmp_path, check=True)
    (tmp_path / "infra").mkdir()
    (tmp_path / "infra" / "values.yaml").write_text(PLANTED["values.yaml"])
    (tmp_path / "untracked.yaml").write_text(PLANTED["nested.yml"])
    (tmp_path / "blob.bin").write_bytes(b"\0\1" + PLANTED["key.pem"].encode())
    subprocess.run(["git", "add", "infra/values.yaml", "blob.bin"], cwd=tmp_path, check=True)
    findings = scan_repo(tmp_path)
    assert findings == ["infra/values.yaml:3: password holds a literal (14 characters)"]


# --- the repository itself ----------------------------------------------------------------


def test_no_tracked_file_holds_a_secret() -> None:
    if not (ROOT / ".git").exists():
        pytest.fail("tests/test_no_secrets.py needs the git checkout (git ls-files) to know the tracked files")
    findings = scan_repo(ROOT)
    assert findings == [], "secrets in tracked files:\n" + "\n".join(findings)
