"""Every model, imported once so ``Base.metadata`` is complete for alembic."""

from kalliope_tel.db.base import Base
from kalliope_tel.tenancy.models import Pbx

__all__ = ["Base", "Pbx"]
