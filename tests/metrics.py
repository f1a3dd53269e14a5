"""Prometheus pages as the tests read them: the workers' /metrics and the
status port's, parsed by prometheus_client (the format's own library, which
also refuses a malformed page), one way for every test."""

from prometheus_client.parser import text_string_to_metric_families


def samples(page: str) -> list:
    """Every sample of the page (name, labels, value)."""
    return [s for family in text_string_to_metric_families(page) for s in family.samples]


def value(page: str, name: str, **labels) -> float:
    """The one sample `name` with exactly these labels."""
    (found,) = [s.value for s in samples(page) if s.name == name and s.labels == labels]
    return found


def total(page: str, name: str) -> float:
    """The sum of every sample called `name`, whatever their labels."""
    return sum(s.value for s in samples(page) if s.name == name)


def by_label(page: str, name: str, label: str) -> dict[str, float]:
    """The samples called `name`, by the value of their `label`."""
    return {s.labels[label]: s.value for s in samples(page) if s.name == name}
