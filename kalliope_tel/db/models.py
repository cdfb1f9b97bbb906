"""Every model, imported once so ``Base.metadata`` is complete for alembic."""

from kalliope_tel import attempts as attempt_models
from kalliope_tel.accounts import models as account_models
from kalliope_tel.billing import models as billing_models
from kalliope_tel.changes import models as change_models
from kalliope_tel.db.base import Base
from kalliope_tel.fax import models as fax_models
from kalliope_tel.groups import models as group_models
from kalliope_tel.hotel import models as hotel_models
from kalliope_tel.lam import models as lam_models
from kalliope_tel.mail2fax import models as mail2fax_models
from kalliope_tel.oplog import models as oplog_models
from kalliope_tel.pms import models as pms_models
from kalliope_tel.tenancy.models import Pbx
from kalliope_tel.trunks import models as trunk_models
from kalliope_tel.users import models as user_models
from kalliope_tel.wakeup import models as wakeup_models
from kalliope_tel.web import models as web_models

__all__ = [
    "Base",
    "Pbx",
    "account_models",
    "attempt_models",
    "billing_models",
    "change_models",
    "fax_models",
    "group_models",
    "hotel_models",
    "lam_models",
    "mail2fax_models",
    "oplog_models",
    "pms_models",
    "trunk_models",
    "user_models",
    "wakeup_models",
    "web_models",
]
