"""The contract suite: each port's promises (dlptui/platform/ports.py), written once and run
against both profiles. `local` is the embedded platform over a fresh DLPTUI_HOME; `cluster` is
the cluster adapters against the pachd and Determined master stand-ins (tests/standins/) and the
real kube-apiserver (tests/fixtures/kube.py). What the promises are, and where the profiles
still differ and why: docs/contract.md.
"""
