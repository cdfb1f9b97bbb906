"""Companies: the installation's partner(s) and their customers, with the
seed's company data checked as the Italian tax office defines it.

The VAT number (Partita IVA) and fiscal code (Codice fiscale) are checked by
python-stdnum (``it.iva``: 11 digits, office code and Luhn check digit, an
"IT" prefix accepted; ``it.codicefiscale``: the 16-character personal code
with its check letter and a real birth date, while an 11-digit fiscal code
is a company's and is checked as a VAT number). Both are stored compact.
Callers own the transaction.
"""

from __future__ import annotations

from sqlalchemy import Select, delete, func, or_, select, update
from sqlalchemy.orm import Session, aliased
from stdnum.exceptions import ValidationError
from stdnum.it import codicefiscale, iva

from kalliope_tel.catalogue import Term
from kalliope_tel.changes.models import Change
from kalliope_tel.tenancy.exceptions import CompanyNotFound, InvalidCompany
from kalliope_tel.tenancy.models import Company, CompanyKind, CompanyStatus, Pbx

INSTALLATION_PARTNER = "Installation"


def vat_number(value: str) -> str:
    """A Partita IVA, compact (11 digits), or refused with why."""
    value = value.strip()
    if not value:
        return ""
    try:
        return str(iva.validate(value))
    except ValidationError as exc:
        raise InvalidCompany("company.vat", value=repr(value), reason=_why(exc), field="vat_number") from None


def fiscal_code(value: str) -> str:
    """A Codice fiscale: 16 characters (a person) or 11 digits (a company,
    a VAT number), compact and upper-case, or refused with why."""
    value = value.strip().upper()
    if not value:
        return ""
    try:
        if value.isdigit():
            return str(iva.validate(value))
        return str(codicefiscale.validate(value))
    except ValidationError as exc:
        raise InvalidCompany("company.fiscal_code", value=repr(value), reason=_why(exc), field="fiscal_code") from None


def _why(exc: ValidationError) -> Term:
    # stdnum's four kinds of refusal, by class: the catalogue words them.
    return Term(
        {
            "InvalidLength": "company.why.length",
            "InvalidFormat": "company.why.format",
            "InvalidChecksum": "company.why.checksum",
            "InvalidComponent": "company.why.component",
        }.get(type(exc).__name__, "company.why.format")
    )


def _legal_name(value: str) -> str:
    value = " ".join(value.split())
    if not value or len(value) > 200:
        raise InvalidCompany("company.legal_name", field="legal_name")
    return value


def _code(value: str) -> str | None:
    value = value.strip()
    if not value:
        return None
    if len(value) > 40 or not all(c.isalnum() or c in "-_./" for c in value):
        raise InvalidCompany("company.code", value=repr(value), field="customer_code")
    return value


def installation_partner(session: Session) -> Company:
    """The first partner: the one an installation without Omnia has (the
    PBXs that existed before companies belong to it)."""
    found = session.scalars(select(Company).where(Company.kind == CompanyKind.PARTNER).order_by(Company.id)).first()
    if found is None:
        found = Company(kind=CompanyKind.PARTNER, legal_name=INSTALLATION_PARTNER)
        session.add(found)
        session.flush()
    return found


def create_partner(session: Session, legal_name: str, *, vat: str = "", fiscal: str = "") -> Company:
    row = Company(
        kind=CompanyKind.PARTNER,
        legal_name=_legal_name(legal_name),
        vat_number=vat_number(vat),
        fiscal_code=fiscal_code(fiscal),
    )
    session.add(row)
    session.flush()
    return row


def create_customer(
    session: Session,
    partner: Company,
    legal_name: str,
    *,
    code: str = "",
    vat: str = "",
    fiscal: str = "",
    manager_enabled: bool = True,
) -> Company:
    """A customer of ``partner``; its code, when given, is unique among the partner's customers."""
    if partner.kind is not CompanyKind.PARTNER:
        raise InvalidCompany("company.not_partner", name=partner.legal_name)
    customer_code = _code(code)
    if customer_code and _customer_by_code(session, partner, customer_code) is not None:
        raise InvalidCompany("company.code_taken", code=customer_code, field="customer_code")
    row = Company(
        kind=CompanyKind.CUSTOMER,
        parent_id=partner.id,
        legal_name=_legal_name(legal_name),
        customer_code=customer_code,
        vat_number=vat_number(vat),
        fiscal_code=fiscal_code(fiscal),
        manager_enabled=manager_enabled,
    )
    session.add(row)
    session.flush()
    return row


def _customer_by_code(session: Session, partner: Company, code: str) -> Company | None:
    return session.scalars(
        select(Company).where(Company.parent_id == partner.id, Company.customer_code == code)
    ).first()


def update_company(
    session: Session,
    company: Company,
    *,
    legal_name: str | None = None,
    code: str | None = None,
    vat: str | None = None,
    fiscal: str | None = None,
    manager_enabled: bool | None = None,
    pbx_users_second_factor: bool | None = None,
) -> Company:
    if legal_name is not None:
        company.legal_name = _legal_name(legal_name)
    if code is not None and company.kind is CompanyKind.CUSTOMER:
        customer_code = _code(code)
        partner = get_company(session, company.parent_id or 0)
        other = _customer_by_code(session, partner, customer_code) if customer_code else None
        if other is not None and other.id != company.id:
            raise InvalidCompany("company.code_taken", code=customer_code, field="customer_code")
        company.customer_code = customer_code
    if vat is not None:
        company.vat_number = vat_number(vat)
    if fiscal is not None:
        company.fiscal_code = fiscal_code(fiscal)
    if manager_enabled is not None and company.kind is CompanyKind.CUSTOMER:
        company.manager_enabled = manager_enabled
    if pbx_users_second_factor is not None:
        company.pbx_users_second_factor = pbx_users_second_factor
    session.flush()
    return company


def get_company(session: Session, company_id: int) -> Company:
    found = session.get(Company, company_id)
    if found is None:
        raise CompanyNotFound("company.not_found", id=company_id)
    return found


def customers_of(session: Session, partner: Company) -> list[Company]:
    return list(session.scalars(select(Company).where(Company.parent_id == partner.id).order_by(Company.legal_name)))


def partners(session: Session) -> list[Company]:
    return list(session.scalars(select(Company).where(Company.kind == CompanyKind.PARTNER).order_by(Company.id)))


def set_status(session: Session, company: Company, status: CompanyStatus) -> Company:
    """Suspend or resume a customer (a partner is not suspended from here)."""
    if company.kind is not CompanyKind.CUSTOMER:
        raise InvalidCompany("company.partner_status")
    if company.status is not status:
        company.status = status
        # Its PBXs' generated configuration changes (a suspended PBX has no
        # endpoints and refuses calls): serve applies it like any change.
        session.execute(update(Pbx).where(Pbx.company_id == company.id).values(config_serial=Pbx.config_serial + 1))
    session.flush()
    return company


def serving_pbx_ids() -> Select[int]:
    """The PBXs that serve: not suspended themselves, their company is
    active, and so is its partner.
    Every path that acts for a PBX on its own (calls placed, faxes sent,
    mailboxes read, configuration written) filters with this."""
    partner = aliased(Company)
    return (
        select(Pbx.id)
        .join(Company, Company.id == Pbx.company_id)
        .outerjoin(partner, partner.id == Company.parent_id)
        .where(Company.status == CompanyStatus.ACTIVE, Pbx.suspended.is_(False))
        .where(or_(partner.id.is_(None), partner.status == CompanyStatus.ACTIVE))
    )


def is_serving(session: Session, pbx_id: int) -> bool:
    return session.scalar(serving_pbx_ids().where(Pbx.id == pbx_id)) is not None


def pbx_count(session: Session, company: Company) -> int:
    return session.scalar(select(func.count()).select_from(Pbx).where(Pbx.company_id == company.id)) or 0


def remove_customer(session: Session, company: Company) -> list[str]:
    """Delete a customer and, by the foreign keys' cascades, every row of its
    PBXs; returns the slugs whose generated Asterisk files the caller removes."""
    if company.kind is not CompanyKind.CUSTOMER:
        raise InvalidCompany("company.partner_delete")
    pbxs = session.execute(select(Pbx.id, Pbx.slug).where(Pbx.company_id == company.id)).all()
    session.delete(company)
    # The live feed's rows carry ids only and no foreign key (a removed
    # room's last change is still read); nobody reads a deleted PBX's feed.
    session.execute(delete(Change).where(Change.pbx_id.in_([pbx_id for pbx_id, _ in pbxs])))
    session.flush()
    return [slug for _, slug in pbxs]
