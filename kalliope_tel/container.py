"""The composition root: the one place that builds and wires everything.

Domain services, engines and adapters never construct each other; they get
what they need from here, so tests can build a container over a test
database and a lab Asterisk and exercise the real wiring.
"""

from __future__ import annotations

from functools import cached_property
from typing import TYPE_CHECKING

from kalliope_tel.config import Settings

# Engines are imported where they are built: a CLI command that only reads
# the database should not pay for loading the ARI/AMI/FastAGI stacks.
if TYPE_CHECKING:
    from sqlalchemy import Engine
    from sqlalchemy.orm import Session, sessionmaker

    from kalliope_tel.asterisk.agi.server import AgiRouter, AgiServer
    from kalliope_tel.asterisk.ami.client import AmiClient
    from kalliope_tel.asterisk.ari.client import AriClient
    from kalliope_tel.asterisk.endpoints import AsteriskEndpoints
    from kalliope_tel.db.hot import HotReader
    from kalliope_tel.features import Feature


class Container:
    def __init__(self, settings: Settings, *, endpoints: AsteriskEndpoints | None = None) -> None:
        self.settings = settings
        self._endpoints = endpoints

    # ------------------------------------------------------------ store
    @cached_property
    def engine(self) -> Engine:
        from kalliope_tel.db.engine import make_engine

        return make_engine(self.settings.effective_database_url)

    @cached_property
    def sessions(self) -> sessionmaker[Session]:
        from kalliope_tel.db.engine import make_session_factory

        return make_session_factory(self.engine)

    @cached_property
    def hot_reader(self) -> HotReader:
        from kalliope_tel.db.hot import HotReader

        return HotReader(self.engine)

    # ------------------------------------------------------------ asterisk
    @property
    def endpoints(self) -> AsteriskEndpoints:
        if self._endpoints is None:
            from kalliope_tel.asterisk.endpoints import resolve_endpoints

            self._endpoints = resolve_endpoints(self.settings)
        return self._endpoints

    def ari_client(self, apps: list[str] | None = None) -> AriClient:
        from kalliope_tel.asterisk.ari.client import AriClient

        ep = self.endpoints
        return AriClient(ep.ari_url, ep.ari_username, ep.ari_password, apps=apps or [self.settings.ari_app])

    def ami_client(self) -> AmiClient:
        from kalliope_tel.asterisk.ami.client import AmiClient

        ep = self.endpoints
        return AmiClient(ep.ami_host, ep.ami_port, ep.ami_username, ep.ami_password)

    @cached_property
    def features(self) -> list[Feature]:
        """The enabled feature plugins, in registry order."""
        from kalliope_tel.features import enabled_features

        return enabled_features(self.settings.features)

    def agi_router(self) -> AgiRouter:
        """The core's handlers (diagnostics, the service PIN), then every enabled feature's."""
        from kalliope_tel.agi import diagnostics, pin
        from kalliope_tel.asterisk.agi.server import AgiRouter

        router = AgiRouter()
        diagnostics.register(router, self)
        pin.register(router, self)
        for feature in self.features:
            if feature.agi is not None:
                feature.agi(router, self)
        return router

    def agi_server(self, router: AgiRouter | None = None) -> AgiServer:
        from kalliope_tel.asterisk.agi.server import AgiServer
        from kalliope_tel.peers import Peers

        ep = self.endpoints
        peers = self.settings.agi_allowed_peers
        allowed = Peers.parse(peers, "agi_allowed_peers entry") if peers else None
        return AgiServer(router or self.agi_router(), ep.agi_host, ep.agi_port, allowed=allowed)

    def close(self) -> None:
        if "hot_reader" in self.__dict__:
            self.hot_reader.close()
        if "engine" in self.__dict__:
            self.engine.dispose()
