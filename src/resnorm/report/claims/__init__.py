"""The Findings: each claim (literature and seed article) as one ``Claim`` — statement,
source, the runs it needs, its stated test — listed once in ``registry``; judged per task
as an effect with a CI over seeds and a verdict by the rules of ``rules``."""
