"""Recommendations: what each team can change, with the kg CO2e per year it saves.

Modules: ``base`` (the ``Recommendation`` record, the ``Scope`` and annualising), one module
per kind (``serving`` idle serving, ``training`` failed runs and training past the best step,
``sweeps``, ``timing``, ``place``, ``efficiency`` model versions) and ``run`` (``advise``: all
kinds ranked, the "how" of each practice). ``carbonledger advise``, the app's Cut page and
the period report call ``advise``; every saving uses the ledger's own CO2e (``activity_co2e``)
or ``carbonledger.footprint``.
"""

from carbonledger.advise.base import Recommendation, Scope
from carbonledger.advise.run import HOW, advice_frame, advise, total_saving_kg_per_year

__all__ = ["HOW", "Recommendation", "Scope", "advice_frame", "advise", "total_saving_kg_per_year"]
