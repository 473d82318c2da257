"""The Findings: each claim (literature and seed article) with the runs it needs, its
stated test, an effect with a CI over seeds, and a verdict by the rules of ``rules``."""
