"""ARI Stasis applications: thin adapters running sans-IO call flows.

Each feature declares its applications (``Feature.stasis``); ``serve`` builds
them for every Asterisk it drives and registers them under the name the
dialplan or an originate passes as the first Stasis argument
(``Stasis(${KALLIOPE_ARI_APP},<name>,...)``).
"""
