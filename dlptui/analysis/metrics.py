"""The metrics a canary is judged on: what each measures, which way is better, its margin's unit."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Metric:
    name: str  # as in a policy file and in --json
    title: str  # as in a sentence
    quantile: float | None  # None: a rate of two Bernoulli streams; else the latency quantile
    higher_is_better: bool
    delta: float  # the default margin: a difference of rates, or a relative change of latency
    unit: str  # what `not yet: ~N more ...` counts

    @property
    def relative(self) -> bool:
        """The effect is canary / primary - 1 (latency), not canary - primary (rates)."""
        return self.quantile is not None


ERROR_RATE = Metric("error_rate", "error rate", None, False, 0.005, "requests")
ACCURACY = Metric("accuracy", "accuracy", None, True, 0.02, "predictions with feedback")
P50 = Metric("p50_latency", "p50 latency", 0.50, False, 0.10, "requests")
P95 = Metric("p95_latency", "p95 latency", 0.95, False, 0.10, "requests")

METRICS: dict[str, Metric] = {m.name: m for m in (ERROR_RATE, ACCURACY, P50, P95)}
