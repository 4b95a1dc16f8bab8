"""bench/instructions.py keeps counting: under callgrind, the webhooks it sends are
accepted by the app (a 403 or 500 would stop it) and their instructions counted, so a
change to the webhook path or the benchmark's requests cannot break it unnoticed."""

import shutil
import subprocess
import sys

import pytest

from tests.support.servers import ROOT

pytestmark = pytest.mark.skipif(
    not shutil.which("valgrind"),
    reason="valgrind is not installed (Debian: apt-get install valgrind)")


def test_it_counts_the_instructions_of_accepted_webhooks():
    result = subprocess.run(
        [sys.executable, "-m", "bench.instructions", "--webhooks", "3", "--warm", "2",
         "--only", "C no rules"],
        cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    rows = [line for line in result.stdout.splitlines() if line.startswith("C no rules")]
    assert len(rows) == 1
    # A webhook through Flask, the signature, the claim and the decision: millions.
    assert int(rows[0].split()[-1].replace(",", "")) > 500_000
